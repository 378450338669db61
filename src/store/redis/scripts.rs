//! The Lua scripts (`lua/*.lua`), and the one way they are called: by SHA1, in a pipeline
//! (a single call is a pipeline of one), loading every script once when Redis answers
//! `NOSCRIPT` (after a restart or a flush).

use super::conn::Conn;
use super::{RedisStore, unavailable};
use crate::store::StoreError;
use std::sync::LazyLock;

/// One script and its SHA1.
pub(super) struct Lua {
    text: &'static str,
    sha: String,
}

impl Lua {
    fn new(text: &'static str) -> Self {
        let sha = redis::Script::new(text).get_hash().to_owned();
        Self { text, sha }
    }

    /// `EVALSHA` of this script with `keys`; add the arguments to the command.
    pub(super) fn call(&self, keys: &[&str]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(keys.len()).arg(keys);
        cmd
    }
}

/// A script built on the fan-out's `enqueue` (`lua/fan_out.lua` comes first).
macro_rules! with_fan_out {
    ($file:literal) => {
        concat!(include_str!("lua/fan_out.lua"), include_str!($file))
    };
}

pub(super) struct Scripts {
    pub lead_clicks: Lua,
    pub enqueue: Lua,
    pub message_status: Lua,
    pub add_counts: Lua,
    pub add_series: Lua,
    pub mark_delivered: Lua,
    pub claim_code: Lua,
    pub bind_identity: Lua,
    pub unbind_identity: Lua,
    pub patch_link: Lua,
    pub create_message: Lua,
    pub index_message: Lua,
    pub take_slots: Lua,
    pub move_due: Lua,
    pub finish: Lua,
    pub retry_now: Lua,
    pub register_campaigns: Lua,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    lead_clicks: Lua::new(with_fan_out!("lua/lead_clicks.lua")),
    enqueue: Lua::new(with_fan_out!("lua/enqueue.lua")),
    message_status: Lua::new(with_fan_out!("lua/message_status.lua")),
    add_counts: Lua::new(include_str!("lua/add_counts.lua")),
    add_series: Lua::new(include_str!("lua/add_series.lua")),
    mark_delivered: Lua::new(include_str!("lua/mark_delivered.lua")),
    claim_code: Lua::new(include_str!("lua/claim_code.lua")),
    bind_identity: Lua::new(include_str!("lua/bind_identity.lua")),
    unbind_identity: Lua::new(include_str!("lua/unbind_identity.lua")),
    patch_link: Lua::new(include_str!("lua/patch_link.lua")),
    create_message: Lua::new(include_str!("lua/create_message.lua")),
    index_message: Lua::new(include_str!("lua/index_message.lua")),
    take_slots: Lua::new(include_str!("lua/take_slots.lua")),
    move_due: Lua::new(include_str!("lua/move_due.lua")),
    finish: Lua::new(include_str!("lua/finish.lua")),
    retry_now: Lua::new(include_str!("lua/retry_now.lua")),
    register_campaigns: Lua::new(include_str!("lua/register_campaigns.lua")),
});

impl Scripts {
    fn all(&self) -> [&Lua; 17] {
        [
            &self.lead_clicks,
            &self.enqueue,
            &self.message_status,
            &self.add_counts,
            &self.add_series,
            &self.mark_delivered,
            &self.claim_code,
            &self.bind_identity,
            &self.unbind_identity,
            &self.patch_link,
            &self.create_message,
            &self.index_message,
            &self.take_slots,
            &self.move_due,
            &self.finish,
            &self.retry_now,
            &self.register_campaigns,
        ]
    }
}

impl RedisStore {
    /// Runs a pipeline that calls scripts, its keys in one slot. When Redis does not know a
    /// script, every script is loaded and the pipeline runs once more: a `NOSCRIPT` answer
    /// means that script call did nothing, and every other command of our pipelines may
    /// run twice (each is idempotent or answers the same the second time).
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.run_on(&mut self.conn(), pipe).await
    }

    /// [`RedisStore::run`] on a given connection.
    pub(super) async fn run_on<T: redis::FromRedisValue>(
        &self,
        conn: &mut Conn,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        match pipe.query_async(conn).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                self.load_scripts().await?;
                pipe.query_async(conn).await.map_err(unavailable)
            }
            other => other.map_err(unavailable),
        }
    }

    /// Loads every script; on a cluster the client sends each `SCRIPT LOAD` to every node.
    async fn load_scripts(&self) -> Result<(), StoreError> {
        for script in SCRIPTS.all() {
            let mut load = redis::cmd("SCRIPT");
            load.arg("LOAD").arg(script.text);
            self.query::<String>(&load).await?;
        }
        Ok(())
    }

    /// Script calls and plain commands whose keys may be in different slots (see
    /// [`RedisStore::spread`]), loading the scripts as [`RedisStore::run`] does.
    pub(super) async fn run_spread<T: redis::FromRedisValue>(
        &self,
        cmds: Vec<redis::Cmd>,
    ) -> Result<Vec<T>, StoreError> {
        match self.spread_raw(cmds.clone()).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                self.load_scripts().await?;
                self.spread(cmds).await
            }
            other => other.map_err(unavailable),
        }
    }

    /// One script call, through [`RedisStore::run`].
    pub(super) async fn run_one<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd);
        let (answer,): (T,) = self.run(&pipe).await?;
        Ok(answer)
    }
}
