//! `corral-agent run`: the long-running loop that keeps role credentials fresh and pings.
//!
//! One task on a current-thread runtime does the credential work: each turn performs whatever is
//! due (credential refresh, health ping, association poll) and sleeps until the next deadline.
//! Every failure only moves a deadline (exponential back-off with jitter), so the loop can
//! neither spin nor die: a control plane that restarts, a network that drops, a registration that
//! vanishes all end in a later retry, never in an exit that systemd would turn into a restart loop.
//!
//! A second task on the same runtime keeps the ssmmessages control channel open for Run Command
//! ([`crate::control_channel`]). After every turn this loop publishes the registration and the
//! current role credentials to it ([`ChannelTarget`]); nothing else is shared.
//!
//! The registration files are re-read every turn (a few small reads at most once a minute), so a
//! `corral-agent register --force` takes effect without restarting the service.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{Ignored, ListInstanceAssociationsRequest, UpdateInstanceInformationRequest};
use crate::backoff::{self, Backoff};
use crate::client::{Auth, CallError};
use crate::control_channel::{self, ChannelOptions, ChannelTarget};
use crate::credentials::{self, Identity, LoadError, RoleCredentials};
use crate::platform::{self, PlatformInfo};
use crate::state::{StateDir, Status, CA_BUNDLE_FILE, PRIVATE_KEY_FILE};

/// The health ping interval when none is configured (the SSM agent's default).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(300);

/// How often `ListInstanceAssociations` is called (the SSM agent's default).
pub const ASSOCIATION_INTERVAL: Duration = Duration::from_secs(600);

/// The longest the loop sleeps (or the ping interval, if shorter): it re-reads the registration
/// and checks credential expiry against the wall clock this often, which also covers a suspended machine whose monotonic clock stood
/// still while the credentials expired.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How often an unregistered agent looks for a registration.
const UNREGISTERED_POLL: Duration = Duration::from_secs(30);

/// The agent's name in `UpdateInstanceInformation`.
pub const AGENT_NAME: &str = "corral-agent";

/// Options of `corral-agent run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time between health pings.
    pub ping_interval: Duration,
    /// Time between association polls.
    pub association_interval: Duration,
    /// The control channel's options (Run Command).
    pub channel: ChannelOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            ping_interval: DEFAULT_PING_INTERVAL,
            association_interval: ASSOCIATION_INTERVAL,
            channel: ChannelOptions::default(),
        }
    }
}

/// Runs the agent until `shutdown` completes.
pub async fn run(dir: StateDir, options: RunOptions, shutdown: impl Future<Output = ()>) {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        state_dir = %dir.path().display(),
        ping_interval_secs = options.ping_interval.as_secs(),
        "corral-agent starting"
    );
    let (targets, watching) = watch::channel(None);
    let channel = tokio::spawn(control_channel::run(dir.clone(), watching, options.channel.clone()));
    let mut agent = Agent::new(dir, options, targets);
    tokio::pin!(shutdown);
    loop {
        // A turn may wait up to a minute on the network; shutdown must not wait for it. Dropping
        // a turn midway is safe: the only multi-step change, key rotation, is crash-safe.
        let wake = tokio::select! {
            wake = agent.turn() => wake,
            () = &mut shutdown => break,
        };
        agent.publish_target();
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = &mut shutdown => break,
        }
    }
    tracing::info!("corral-agent stopping");
    // Running commands die with the agent (their process groups are killed when the runtime
    // drops them); the next start reports them as failed rather than running them again.
    channel.abort();
}

struct Agent {
    dir: StateDir,
    options: RunOptions,
    platform: PlatformInfo,
    identity: Option<Identity>,
    /// Role credentials, in memory only.
    credentials: Option<RoleCredentials>,
    refresh_due: Instant,
    /// The earliest the next refresh may run, whatever asks for it: after a failure, the
    /// back-off; after a success, a short pause. Nothing (a rejected ping, credentials that look
    /// expired on a machine with a wrong clock) can make refreshes spin.
    refresh_not_before: Instant,
    refresh_backoff: Backoff,
    ping_due: Instant,
    ping_backoff: Backoff,
    association_due: Instant,
    /// The control plane said this instance does not exist any more.
    deregistered: bool,
    status: Status,
    /// The last problem logged while loading the registration, to log each problem once.
    load_problem: Option<String>,
    /// Whether the association call has already logged a failure (logged once, then at debug).
    association_failure_logged: bool,
    /// Where the control channel task learns the registration and credentials.
    targets: watch::Sender<Option<ChannelTarget>>,
}

impl Agent {
    fn new(dir: StateDir, options: RunOptions, targets: watch::Sender<Option<ChannelTarget>>) -> Self {
        let now = Instant::now();
        Agent {
            platform: platform::detect(),
            dir,
            options,
            identity: None,
            credentials: None,
            refresh_due: now,
            refresh_not_before: now,
            refresh_backoff: Backoff::standard(),
            ping_due: now,
            ping_backoff: Backoff::standard(),
            association_due: now,
            deregistered: false,
            status: Status::default(),
            load_problem: None,
            association_failure_logged: false,
            targets,
        }
    }

    /// Tells the control channel where to connect and with which credentials: nothing while
    /// the machine is unregistered or deregistered.
    fn publish_target(&self) {
        let target = match (&self.identity, self.deregistered) {
            (Some(identity), false) => {
                let ca = self.dir.file(CA_BUNDLE_FILE);
                Some(ChannelTarget {
                    instance_id: identity.registration.instance_id.clone(),
                    region: identity.registration.region.clone(),
                    endpoint: identity.registration.endpoint.clone(),
                    ca_bundle: ca.exists().then_some(ca),
                    credentials: self.credentials.as_ref().map(|c| c.credentials.clone()),
                })
            }
            _ => None,
        };
        self.targets.send_if_modified(|current| {
            if *current == target {
                return false;
            }
            *current = target;
            true
        });
    }

    /// Does what is due and returns when to wake up next.
    async fn turn(&mut self) -> Instant {
        if !self.sync_identity() {
            return Instant::now() + UNREGISTERED_POLL;
        }
        let wall = OffsetDateTime::now_utc();
        // Credentials that were already expired when they arrived say the clocks disagree; the
        // control plane is the judge of those, so they are kept and only the back-off applies.
        if let Some(creds) = self.credentials.as_ref().filter(|c| c.had_lifetime()) {
            let expires_at = creds.expires_at;
            if wall >= backoff::refresh_at(creds.retrieved_at, expires_at) {
                self.refresh_now();
            }
            if wall >= expires_at {
                tracing::warn!("role credentials expired before they could be refreshed");
                self.credentials = None;
                self.status.credentials_expire_at = None;
            }
        }
        self.refresh_soon_without_credentials();
        if Instant::now() >= self.refresh_due {
            self.refresh().await;
        }
        if self.credentials.is_some() && !self.deregistered && Instant::now() >= self.ping_due {
            self.ping().await;
        }
        if self.credentials.is_some() && !self.deregistered && Instant::now() >= self.association_due {
            self.poll_associations().await;
        }
        self.refresh_soon_without_credentials();
        let mut wake = self.refresh_due;
        if self.credentials.is_some() && !self.deregistered {
            wake = wake.min(self.ping_due).min(self.association_due);
        }
        // A short ping interval (tests) also shortens the idle checks, e.g. for a new registration.
        wake.min(Instant::now() + MAX_SLEEP.min(self.options.ping_interval))
    }

    /// Without credentials nothing else can happen, so fetch them now, unless a failed attempt
    /// has set a back-off that must be honoured (or the machine is deregistered).
    fn refresh_soon_without_credentials(&mut self) {
        if self.credentials.is_none() && !self.deregistered {
            self.refresh_now();
        }
    }

    /// Brings the refresh forward to now, or to the earliest moment the back-off allows.
    fn refresh_now(&mut self) {
        self.refresh_due = self.refresh_due.min(Instant::now()).max(self.refresh_not_before);
    }

    /// Loads or reloads the registration; false while the machine is not (usably) registered.
    fn sync_identity(&mut self) -> bool {
        let on_disk = match (self.dir.load_registration(), self.dir.load_text(PRIVATE_KEY_FILE)) {
            (Ok(Some(registration)), Ok(Some(key_text))) => Some((registration, key_text)),
            (Ok(None), _) | (_, Ok(None)) => None,
            (Err(e), _) | (_, Err(e)) => {
                // A transient read problem must not stop a working agent.
                self.log_load_problem(format!("cannot read the registration: {e}"));
                return self.identity.is_some();
            }
        };
        let Some((registration, key_text)) = on_disk else {
            if self.identity.take().is_some() {
                tracing::warn!("the registration was removed from the state directory; idling until the machine is registered again");
            }
            self.credentials = None;
            self.log_load_problem(format!(
                "this machine is not registered; waiting for `corral-agent register` (state directory {})",
                self.dir.path().display()
            ));
            return false;
        };
        if let Some(identity) = &self.identity {
            if !identity.differs_from(&registration, &key_text) {
                return true;
            }
            tracing::info!(instance_id = %registration.instance_id, "the registration or key changed on disk; switching to it");
        }
        match Identity::load(&self.dir) {
            Ok(identity) => {
                tracing::info!(
                    instance_id = %identity.registration.instance_id,
                    endpoint = %identity.registration.endpoint,
                    region = %identity.registration.region,
                    "registered identity loaded"
                );
                self.identity = Some(identity);
                self.load_problem = None;
                self.reset_schedule();
                // `register` rewrote the status for a new registration; the in-memory copy
                // belongs to the old one. Deregistration is re-checked at once, so it is cleared.
                self.status = self.dir.load_status();
                self.status.deregistered = false;
                self.status.deregistered_at = None;
                true
            }
            Err(LoadError::NotRegistered) => false,
            Err(e) => {
                self.log_load_problem(e.to_string());
                self.identity = None;
                self.credentials = None;
                false
            }
        }
    }

    fn log_load_problem(&mut self, problem: String) {
        if self.load_problem.as_deref() != Some(problem.as_str()) {
            tracing::warn!("{problem}");
            self.load_problem = Some(problem);
        }
    }

    /// A new identity starts from scratch: fetch credentials and ping at once.
    fn reset_schedule(&mut self) {
        let now = Instant::now();
        self.credentials = None;
        self.deregistered = false;
        self.refresh_due = now;
        self.refresh_not_before = now;
        self.ping_due = now;
        self.association_due = now;
        self.refresh_backoff.reset();
        self.ping_backoff.reset();
    }

    async fn refresh(&mut self) {
        let Some(identity) = self.identity.as_mut() else { return };
        let result = identity.role_token(&self.dir).await;
        let instance_id = identity.registration.instance_id.clone();
        match result {
            Ok((creds, update_key_pair)) => {
                let wall = OffsetDateTime::now_utc();
                let now = Instant::now();
                if creds.had_lifetime() {
                    let refresh_at = backoff::refresh_at(creds.retrieved_at, creds.expires_at);
                    let delay = backoff::refresh_delay(wall, refresh_at);
                    self.refresh_due = now + delay;
                    self.refresh_not_before = now + backoff::MIN_REFRESH_DELAY;
                    self.refresh_backoff.reset();
                    tracing::info!(
                        expires_at = %crate::rfc3339(creds.expires_at),
                        next_refresh_in_secs = delay.as_secs(),
                        "obtained role credentials"
                    );
                } else {
                    let delay = self.refresh_backoff.next_delay();
                    self.refresh_due = now + delay;
                    self.refresh_not_before = self.refresh_due;
                    tracing::warn!(
                        expires_at = %crate::rfc3339(creds.expires_at),
                        retry_in_secs = delay.as_secs(),
                        "obtained role credentials that are already expired by this machine's clock; is the clock right?"
                    );
                }
                if self.deregistered {
                    tracing::info!(%instance_id, "the control plane accepts this machine again");
                    self.deregistered = false;
                    self.status.deregistered = false;
                    self.status.deregistered_at = None;
                    self.ping_due = Instant::now();
                    self.association_due = Instant::now();
                }
                self.status.credentials_expire_at = Some(crate::rfc3339(creds.expires_at));
                self.status.last_error = None;
                self.credentials = Some(creds);
                self.save_status();
                if update_key_pair {
                    self.rotate_key().await;
                }
            }
            Err(error) if credentials::role_token_says_unknown(&error) => self.mark_deregistered(&instance_id, &error),
            Err(error) => {
                let delay = self.refresh_backoff.next_delay();
                self.refresh_due = Instant::now() + delay;
                self.refresh_not_before = self.refresh_due;
                if error.code() == Some("MachineFingerprintDoesNotMatch") {
                    tracing::error!(
                        %error,
                        "the control plane does not recognise this machine's fingerprint (was the state directory copied from another machine?); register again with --force"
                    );
                } else {
                    tracing::warn!(%error, retry_in_secs = delay.as_secs(), "could not obtain role credentials");
                }
                self.status.last_error = Some(format!("credentials: {error}"));
                self.save_status();
            }
        }
    }

    async fn rotate_key(&mut self) {
        let Some(identity) = self.identity.as_mut() else { return };
        tracing::info!("the control plane asked for a new key pair; rotating");
        match identity.rotate_key(&self.dir).await {
            Ok(()) => tracing::info!("rotated the instance key pair"),
            // The old key stays in force; the control plane will ask again at the next refresh.
            Err(e) => tracing::warn!(error = %e, "key rotation failed; will retry at the next credential refresh"),
        }
    }

    async fn ping(&mut self) {
        let (Some(identity), Some(creds)) = (&self.identity, &self.credentials) else { return };
        let request = UpdateInstanceInformationRequest {
            instance_id: identity.registration.instance_id.clone(),
            agent_name: AGENT_NAME.into(),
            agent_status: "Active".into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            platform_type: self.platform.platform_type.into(),
            platform_name: self.platform.platform_name.clone(),
            platform_version: self.platform.platform_version.clone(),
            // Re-probed each time: DHCP and VPNs change it.
            ip_address: platform::ip_address(identity.client.host()),
            computer_name: self.platform.computer_name.clone(),
        };
        let instance_id = request.instance_id.clone();
        let result = identity
            .client
            .call_json::<_, Ignored>("UpdateInstanceInformation", &request, Auth::Role(&creds.credentials))
            .await;
        let now = crate::now_rfc3339();
        self.status.last_ping_at = Some(now.clone());
        match result {
            Ok(_) => {
                if self.status.last_ping_ok != Some(true) {
                    tracing::info!(%instance_id, "health ping succeeded");
                } else {
                    tracing::debug!("health ping succeeded");
                }
                self.ping_backoff.reset();
                self.ping_due = Instant::now() + self.options.ping_interval;
                self.status.last_ping_ok = Some(true);
                self.status.last_ping_success_at = Some(now);
                self.status.last_error = None;
                self.save_status();
            }
            Err(error) if credentials::is_deregistered(&error) => self.mark_deregistered(&instance_id, &error),
            Err(error) => {
                if credentials::is_credentials_rejected(&error) {
                    // Fresh credentials are the cure; the refresh keeps its own back-off.
                    self.credentials = None;
                    self.status.credentials_expire_at = None;
                }
                let delay = self.ping_backoff.next_delay().min(backoff::jitter(self.options.ping_interval));
                self.ping_due = Instant::now() + delay;
                tracing::warn!(%error, retry_in_secs = delay.as_secs(), "health ping failed");
                self.status.last_ping_ok = Some(false);
                self.status.last_error = Some(format!("health ping: {error}"));
                self.save_status();
            }
        }
    }

    async fn poll_associations(&mut self) {
        let (Some(identity), Some(creds)) = (&self.identity, &self.credentials) else { return };
        let instance_id = identity.registration.instance_id.clone();
        let request = ListInstanceAssociationsRequest { instance_id: &instance_id };
        let result = identity
            .client
            .call_json::<_, Ignored>("ListInstanceAssociations", &request, Auth::Role(&creds.credentials))
            .await;
        self.association_due = Instant::now() + self.options.association_interval;
        match result {
            // Associations are not run yet; the call only shows the control plane we are alive.
            Ok(_) => {
                tracing::debug!("ListInstanceAssociations succeeded");
                self.association_failure_logged = false;
            }
            Err(error) if credentials::is_deregistered(&error) => self.mark_deregistered(&instance_id, &error),
            Err(error) => {
                if !self.association_failure_logged {
                    tracing::warn!(%error, "ListInstanceAssociations failed (ignored)");
                    self.association_failure_logged = true;
                } else {
                    tracing::debug!(%error, "ListInstanceAssociations failed (ignored)");
                }
            }
        }
    }

    /// The control plane does not know this instance any more: stop pinging, say so loudly once,
    /// and check back every few minutes (the registration may come back, or be replaced on disk).
    fn mark_deregistered(&mut self, instance_id: &str, error: &CallError) {
        let retry = backoff::jitter(backoff::DEREGISTERED_RETRY);
        if !self.deregistered {
            tracing::error!(
                %error,
                "this machine was deregistered from Corral ({instance_id}); register it again with a new activation"
            );
            self.status.deregistered_at = Some(crate::now_rfc3339());
        } else {
            tracing::info!(%instance_id, retry_in_secs = retry.as_secs(), "still deregistered");
        }
        self.deregistered = true;
        self.credentials = None;
        self.refresh_due = Instant::now() + retry;
        self.refresh_not_before = self.refresh_due;
        self.status.deregistered = true;
        self.status.credentials_expire_at = None;
        self.status.last_error = Some(error.to_string());
        self.save_status();
    }

    fn save_status(&mut self) {
        self.status.updated_at = Some(crate::now_rfc3339());
        if let Err(e) = self.dir.save_status(&self.status) {
            tracing::warn!(error = %e, "cannot write the status file");
        }
    }
}
