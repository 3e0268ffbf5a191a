//! [`RedisMetadata`]: channel metadata records, one hash per channel (`major` and the whole
//! record in this crate's encoding, see `metadata_record.rs`), written only by a Lua
//! compare-and-set on `major`, so concurrent writers on any nodes get one winner per revision.
//! Records do not expire (as in memory).

use std::sync::Arc;

use activenow_engine::metadata::{ChannelKey, ChannelMetadata};
use activenow_engine::store::MetadataStore;
use activenow_engine::StoreError;
use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::HashesInterface;

use crate::error::store_error;
use crate::keys::Keys;
use crate::metadata_record;
use crate::record::int;
use crate::scripts::{eval, Call, Scripts};

pub struct RedisMetadata {
    client: Client,
    keys: Keys,
    scripts: Arc<Scripts>,
}

impl RedisMetadata {
    pub(crate) fn new(client: Client, keys: Keys, scripts: Arc<Scripts>) -> RedisMetadata {
        RedisMetadata {
            client,
            keys,
            scripts,
        }
    }
}

#[async_trait]
impl MetadataStore for RedisMetadata {
    async fn get(&self, channel: &ChannelKey) -> Result<ChannelMetadata, StoreError> {
        let json: Option<String> = self
            .client
            .hget(self.keys.metadata(channel), "json")
            .await
            .map_err(store_error)?;
        match json {
            None => Ok(ChannelMetadata::default()),
            Some(stored) => metadata_record::decode(&stored),
        }
    }

    async fn compare_and_set(
        &self,
        channel: &ChannelKey,
        expected_major: u64,
        next: &ChannelMetadata,
    ) -> Result<bool, StoreError> {
        let stored = metadata_record::encode(next);
        let reply = eval(
            &self.client,
            Call {
                script: &self.scripts.metadata_cas,
                keys: vec![self.keys.metadata(channel)],
                args: vec![
                    expected_major.to_string(),
                    next.major_revision.to_string(),
                    stored,
                ],
            },
        )
        .await
        .map_err(store_error)?;
        Ok(int(&reply)? == 1)
    }
}
