//! `corral-agent service install|uninstall` and running under the Windows service manager.
//!
//! On Windows the service runs `corral-agent run`. A service process must connect to the service
//! control manager within 30 s or it is killed, so `run` first tries to become a service
//! ([`run_windows`]) and falls back to a console run when it was started from a terminal. On
//! Linux, services are systemd's business: `install.sh` writes the unit.

use std::path::PathBuf;

/// Name of the Windows service.
#[cfg(windows)]
pub const SERVICE_NAME: &str = "CorralAgent";

/// What `service` can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    /// Register the service (automatic start) and start it.
    Install,
    /// Stop and remove the service.
    Uninstall,
}

/// Carries out `action`; the error is the message to print.
#[cfg(not(windows))]
pub fn manage(action: ServiceAction, _state_dir: Option<PathBuf>) -> Result<String, String> {
    let _ = action;
    Err("`corral-agent service` manages the Windows service; on Linux run install.sh (see `install.sh --help`), \
         which installs a systemd unit running `corral-agent run`"
        .into())
}

/// Carries out `action`; the error is the message to print.
#[cfg(windows)]
pub fn manage(action: ServiceAction, state_dir: Option<PathBuf>) -> Result<String, String> {
    match action {
        ServiceAction::Install => windows::install(state_dir),
        ServiceAction::Uninstall => windows::uninstall(),
    }
}

#[cfg(windows)]
pub use windows::run_windows;

#[cfg(windows)]
mod windows {
    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::sync::{mpsc, OnceLock};
    use std::time::Duration;

    use windows_service::service::{
        ServiceAccess, ServiceAction as ScAction, ServiceActionType, ServiceControl, ServiceControlAccept,
        ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo,
        ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

    use super::SERVICE_NAME;
    use crate::agent::RunOptions;
    use crate::state::StateDir;

    /// `ERROR_FAILED_SERVICE_CONTROLLER_CONNECT`: the process was not started by the service
    /// control manager, i.e. someone ran `corral-agent run` in a console.
    const NOT_A_SERVICE: i32 = 1063;

    /// The run options handed from `main` to the service's main function, which the service
    /// manager calls on a thread of its own without our arguments.
    static SERVICE_RUN: OnceLock<(StateDir, RunOptions)> = OnceLock::new();

    windows_service::define_windows_service!(ffi_service_main, service_main);

    /// Runs the agent as a Windows service when started by the service manager; returns
    /// `Ok(false)` when started from a console so the caller runs it in the foreground.
    pub fn run_windows(dir: StateDir, options: RunOptions) -> Result<bool, String> {
        let _ = SERVICE_RUN.set((dir, options));
        match windows_service::service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
            Ok(()) => Ok(true),
            Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(NOT_A_SERVICE) => Ok(false),
            Err(e) => Err(format!("cannot start as a Windows service: {e}")),
        }
    }

    fn service_main(_arguments: Vec<OsString>) {
        if let Err(e) = run_service() {
            tracing::error!(error = %e, "the Windows service failed");
        }
    }

    fn run_service() -> Result<(), String> {
        let Some((dir, options)) = SERVICE_RUN.get().cloned() else {
            return Err("service started without run options".into());
        };
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                let _ = stop_tx.send(());
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let status = service_control_handler::register(SERVICE_NAME, handler).map_err(|e| e.to_string())?;
        let report = |state: ServiceState, accept: ServiceControlAccept| {
            let _ = status.set_service_status(ServiceStatus {
                service_type: ServiceType::OWN_PROCESS,
                current_state: state,
                controls_accepted: accept,
                exit_code: ServiceExitCode::Win32(0),
                checkpoint: 0,
                wait_hint: Duration::from_secs(10),
                process_id: None,
            });
        };
        report(ServiceState::Running, ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        // The stop request arrives on a std channel from the handler's thread; a blocking task
        // turns it into a future the agent's loop can select on.
        let shutdown = async move {
            let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
        };
        runtime.block_on(crate::agent::run(dir, options, shutdown));
        report(ServiceState::Stopped, ServiceControlAccept::empty());
        Ok(())
    }

    pub fn install(state_dir: Option<PathBuf>) -> Result<String, String> {
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )
        .map_err(|e| format!("cannot open the service manager (run as Administrator): {e}"))?;
        let executable = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let mut arguments = vec![OsString::from("run")];
        if let Some(dir) = state_dir {
            arguments.push("--state-dir".into());
            arguments.push(dir.into_os_string());
        }
        let info = ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: "Corral Agent".into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: executable,
            launch_arguments: arguments,
            dependencies: vec![],
            // LocalSystem: the state directory is restricted to SYSTEM and Administrators.
            account_name: None,
            account_password: None,
        };
        let service = manager
            .create_service(&info, ServiceAccess::START | ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_STATUS)
            .map_err(|e| format!("cannot create the service {SERVICE_NAME}: {e}"))?;
        let _ = service.set_description("Corral agent: credentials and health pings for this managed machine");
        // Like `Restart=always` in the systemd unit: come back 5 s after any crash.
        let restart = ScAction { action_type: ServiceActionType::Restart, delay: Duration::from_secs(5) };
        let _ = service.update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart.clone(), restart.clone(), restart]),
        });
        service.start::<&str>(&[]).map_err(|e| format!("service {SERVICE_NAME} installed but did not start: {e}"))?;
        Ok(format!("installed and started the Windows service {SERVICE_NAME}"))
    }

    pub fn uninstall() -> Result<String, String> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(|e| format!("cannot open the service manager (run as Administrator): {e}"))?;
        let service = manager
            .open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE)
            .map_err(|e| format!("cannot open the service {SERVICE_NAME}: {e}"))?;
        if let Ok(status) = service.query_status() {
            if status.current_state != ServiceState::Stopped {
                let _ = service.stop();
            }
        }
        service.delete().map_err(|e| format!("cannot delete the service {SERVICE_NAME}: {e}"))?;
        Ok(format!("removed the Windows service {SERVICE_NAME} (the state directory is kept)"))
    }
}
