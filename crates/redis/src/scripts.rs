//! The Lua scripts (in `lua/`) and how they are called: `EVALSHA`, loading the script when
//! the server does not know it (a restarted Redis forgets them all), alone or many in one
//! pipeline (one round trip).

use fred::clients::Client;
use fred::error::Error;
use fred::interfaces::{ClientLike, LuaInterface};
use fred::types::scripts::Script;
use fred::types::{ClusterHash, CustomCommand, Value};

macro_rules! session_script {
    ($file:literal) => {
        concat!(include_str!("lua/session.lua"), "\n", include_str!($file))
    };
}

macro_rules! room_script {
    ($file:literal) => {
        concat!(include_str!("lua/room.lua"), "\n", include_str!($file))
    };
}

pub(crate) struct Scripts {
    pub join: Script,
    pub leave: Script,
    pub reap: Script,
    pub update: Script,
    pub restore: Script,
    pub forget: Script,
    pub room_info: Script,
    pub room_page: Script,
    pub room_identity: Script,
    pub touch: Script,
    pub nodes: Script,
    pub visit: Script,
    pub session_create: Script,
    pub session_get: Script,
    pub session_push: Script,
    pub session_expire: Script,
    pub session_remove: Script,
    pub online: Script,
    pub metadata_cas: Script,
    pub lock_acquire: Script,
    pub lock_release: Script,
    pub lock_holder: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            join: Script::from_lua(room_script!("lua/join.lua")),
            leave: Script::from_lua(room_script!("lua/leave.lua")),
            reap: Script::from_lua(room_script!("lua/reap.lua")),
            update: Script::from_lua(room_script!("lua/update.lua")),
            restore: Script::from_lua(room_script!("lua/restore.lua")),
            forget: Script::from_lua(room_script!("lua/forget.lua")),
            room_info: Script::from_lua(room_script!("lua/room_info.lua")),
            room_page: Script::from_lua(room_script!("lua/room_page.lua")),
            room_identity: Script::from_lua(room_script!("lua/room_identity.lua")),
            touch: Script::from_lua(include_str!("lua/touch.lua")),
            nodes: Script::from_lua(include_str!("lua/nodes.lua")),
            visit: Script::from_lua(include_str!("lua/visit.lua")),
            session_create: Script::from_lua(include_str!("lua/session_create.lua")),
            session_get: Script::from_lua(include_str!("lua/session_get.lua")),
            session_push: Script::from_lua(session_script!("lua/session_push.lua")),
            session_expire: Script::from_lua(session_script!("lua/session_expire.lua")),
            session_remove: Script::from_lua(include_str!("lua/session_remove.lua")),
            online: Script::from_lua(include_str!("lua/online.lua")),
            metadata_cas: Script::from_lua(include_str!("lua/metadata_cas.lua")),
            lock_acquire: Script::from_lua(include_str!("lua/lock_acquire.lua")),
            lock_release: Script::from_lua(include_str!("lua/lock_release.lua")),
            lock_holder: Script::from_lua(include_str!("lua/lock_holder.lua")),
        }
    }

    fn all(&self) -> Vec<&Script> {
        vec![
            &self.join,
            &self.leave,
            &self.reap,
            &self.update,
            &self.restore,
            &self.forget,
            &self.room_info,
            &self.room_page,
            &self.room_identity,
            &self.touch,
            &self.nodes,
            &self.visit,
            &self.session_create,
            &self.session_get,
            &self.session_push,
            &self.session_expire,
            &self.session_remove,
            &self.online,
            &self.metadata_cas,
            &self.lock_acquire,
            &self.lock_release,
            &self.lock_holder,
        ]
    }

    /// Loads every script (on every primary of a cluster).
    pub async fn load(&self, client: &Client) -> Result<(), Error> {
        for s in self.all() {
            s.load(client).await?;
        }
        Ok(())
    }
}

/// One script call.
pub(crate) struct Call<'a> {
    pub script: &'a Script,
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

fn noscript(e: &Error) -> bool {
    e.details().contains("NOSCRIPT")
}

/// Runs one script.
pub(crate) async fn eval(client: &Client, call: Call<'_>) -> Result<Value, Error> {
    call.script
        .evalsha_with_reload(client, call.keys, call.args)
        .await
}

/// Runs many scripts in one pipeline; the results come back in order. Calls the server did
/// not know the script of are run again after loading the scripts.
pub(crate) async fn eval_all(
    client: &Client,
    scripts: &Scripts,
    calls: Vec<Call<'_>>,
) -> Vec<Result<Value, Error>> {
    if calls.is_empty() {
        return Vec::new();
    }
    let pipeline = client.pipeline();
    for c in &calls {
        // fred's pipelines have no `evalsha`: send it as a custom command, routed by its
        // first key (argument 2, after the hash and the key count).
        let command = CustomCommand::new_static("EVALSHA", ClusterHash::Offset(2), false);
        let mut args: Vec<Value> = Vec::with_capacity(2 + c.keys.len() + c.args.len());
        args.push(c.script.sha1().to_string().into());
        args.push((c.keys.len() as i64).into());
        args.extend(c.keys.iter().map(|k| Value::from(k.as_str())));
        args.extend(c.args.iter().map(|a| Value::from(a.as_str())));
        // Queuing in a pipeline only fails if the arguments cannot be encoded.
        let _: Result<(), Error> = pipeline.custom(command, args).await;
    }
    let mut results: Vec<Result<Value, Error>> = pipeline.try_all().await;
    if results.len() != calls.len() {
        let e = Error::new(fred::error::ErrorKind::Protocol, "pipeline lost replies");
        return calls.iter().map(|_| Err(e.clone())).collect();
    }
    if results.iter().any(|r| r.as_ref().is_err_and(noscript)) {
        if let Err(e) = scripts.load(client).await {
            for r in results
                .iter_mut()
                .filter(|r| r.as_ref().is_err_and(noscript))
            {
                *r = Err(e.clone());
            }
            return results;
        }
        for (r, c) in results.iter_mut().zip(calls) {
            if r.as_ref().is_err_and(noscript) {
                *r = client
                    .evalsha(c.script.sha1().clone(), c.keys, c.args)
                    .await;
            }
        }
    }
    results
}
