//! The `settings!` macro: from the table in `mod.rs`, the layer that clap and the TOML file
//! fill in (every field optional), the resolved [`Settings`](super::Settings), and the
//! listing that `activenow config` prints with secrets masked.

macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr, $env:literal $(, $secret:ident)?; )*) => {
        /// One source of settings (flags + environment via clap, or the TOML file).
        #[derive(Debug, Default, Clone, clap::Args, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct SettingsLayer {
            $( $(#[doc = $doc])* #[arg(long, env = $env, global = true)] #[serde(default)] pub $name: Option<$ty>, )*
            /// `[[pusher.apps]]` of the TOML file (no flag or variable: a list).
            #[arg(skip)]
            #[serde(skip)]
            pub pusher_apps: Vec<crate::protocol::pusher::app_config::AppConfig>,
        }

        /// The effective settings.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $name: $ty, )*
            /// The Pusher apps of the config file, beside PUSHER_APP_ID/KEY/SECRET.
            pub pusher_apps: Vec<crate::protocol::pusher::app_config::AppConfig>,
        }

        impl SettingsLayer {
            /// This layer, with `lower` filling the gaps.
            pub fn over(self, lower: SettingsLayer) -> SettingsLayer {
                let pusher_apps = if self.pusher_apps.is_empty() { lower.pusher_apps } else { self.pusher_apps };
                SettingsLayer { $( $name: self.$name.or(lower.$name), )* pusher_apps }
            }

            /// Fills what is still unset with the defaults.
            pub fn resolve(self) -> Settings {
                Settings { $( $name: self.$name.unwrap_or_else(|| $default), )* pusher_apps: self.pusher_apps }
            }
        }

        impl Settings {
            /// `(ENV_NAME, value)` for every setting, secrets masked.
            pub fn describe(&self) -> Vec<(&'static str, String)> {
                vec![ $( ($env, self::generate::mask(settings!(@secret $($secret)?), format!("{}", self.$name))), )* ]
            }
        }
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

/// A secret's value as `activenow config` prints it.
pub(super) fn mask(secret: bool, value: String) -> String {
    if secret && !value.is_empty() {
        "********".into()
    } else {
        value
    }
}
