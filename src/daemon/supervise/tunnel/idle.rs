//! A lazy tunnel's sleep: its port held with nothing behind it until a client connects.

use tokio::sync::mpsc;

use super::Ctx;
use crate::daemon::process::{Order, Phase};
use crate::daemon::supervise::{self, Waited};

/// A lazy tunnel without a client: `idle` in `ps`, nothing behind its port, until a client
/// connects (then `Elapsed`), an order comes or the daemon stops.
pub(super) async fn asleep(ctx: &Ctx, orders: &mut mpsc::Receiver<Order>) -> Waited {
    ctx.process.update(|s| {
        s.phase = Phase::Idle;
        s.detail = None;
    });
    let woke = supervise::wait_until(
        ctx.part.tunnel.wait_for_client(),
        orders,
        &ctx.daemon.shutdown,
    )
    .await;
    if matches!(woke, Waited::Elapsed) {
        ctx.say("a client connected: starting the upstream").await;
        ctx.process.update(|s| s.phase = Phase::Starting);
    }
    woke
}
