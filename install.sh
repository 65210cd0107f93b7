#!/bin/sh
# Installs corral-agent on a Linux machine: the binary, a systemd unit, and optionally the
# registration. Run `./install.sh --help` for the options. POSIX sh, so it works on minimal
# images without bash.
set -eu

PROG=${0##*/}
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

usage() {
    cat <<EOF
Usage: $PROG [options]

Installs the Corral agent:
  1. copies the corral-agent binary to PREFIX/bin (default /usr/local/bin);
  2. writes the systemd unit /etc/systemd/system/corral-agent.service
     (ExecStart=PREFIX/bin/corral-agent run, Restart=always, RestartSec=5);
  3. registers the machine when --code, --id, --region and --endpoint are given;
  4. when systemd is running: systemctl daemon-reload && systemctl enable --now corral-agent
     (restarting it if it was already running, so a new binary takes effect).
Without registration options the service starts anyway and waits until
\`corral-agent register\` has been run.

Options:
  --binary PATH      corral-agent binary to install. Default: ./corral-agent beside this
                     script, else target/release-agent/corral-agent, else
                     target/release/corral-agent (relative to this script).
  --code CODE        activation code (from \`aws ssm create-activation\`)
  --id ID            activation ID
  --region REGION    region of the control plane, e.g. us-east-1
  --endpoint URL     control-plane URL, e.g. https://corral.example.com:8443
  --ca-bundle FILE   PEM CA bundle to trust for the endpoint (e.g. the server's ca.pem);
                     copied into the state directory
  --force            register again even if this machine is already registered
  --state-dir DIR    agent state directory (default /var/lib/corral-agent); also written
                     into the unit as CORRAL_AGENT_STATE_DIR
  --prefix DIR       installation prefix (default /usr/local)
  --destdir DIR      stage everything under DIR (packaging, tests); paths written into the
                     unit stay the final ones. Also read from \$DESTDIR.
  --no-systemd       write the unit but do not call systemctl
  --uninstall        stop and disable the service, remove the unit and the binary
                     (the state directory with the registration is kept)
  -h, --help         this text

Examples:
  sudo ./install.sh --code "\$CODE" --id "\$ID" --region us-east-1 \\
      --endpoint https://corral.example.com:8443 --ca-bundle ca.pem
  ./install.sh --destdir /tmp/stage --no-systemd      # stage only
EOF
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# A word quoted for sh, only when it needs it, so printed commands can be pasted as they are.
quote() {
    case $1 in
        *[!A-Za-z0-9_./:=@%+-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
        *) printf '%s' "$1" ;;
    esac
}

need_value() {
    # $1 option name, $2 number of remaining arguments
    [ "$2" -ge 2 ] || die "$1 needs a value (see --help)"
}

BINARY=""
CODE=""
ACT_ID=""
REGION=""
ENDPOINT=""
CA_BUNDLE=""
FORCE=0
STATE_DIR=""
PREFIX=/usr/local
DESTDIR=${DESTDIR:-}
USE_SYSTEMD=1
UNINSTALL=0

while [ $# -gt 0 ]; do
    case $1 in
        --binary) need_value "$1" $#; BINARY=$2; shift 2 ;;
        --code) need_value "$1" $#; CODE=$2; shift 2 ;;
        --id) need_value "$1" $#; ACT_ID=$2; shift 2 ;;
        --region) need_value "$1" $#; REGION=$2; shift 2 ;;
        --endpoint) need_value "$1" $#; ENDPOINT=$2; shift 2 ;;
        --ca-bundle) need_value "$1" $#; CA_BUNDLE=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        --state-dir) need_value "$1" $#; STATE_DIR=$2; shift 2 ;;
        --prefix) need_value "$1" $#; PREFIX=$2; shift 2 ;;
        --destdir) need_value "$1" $#; DESTDIR=$2; shift 2 ;;
        --no-systemd) USE_SYSTEMD=0; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
done

BIN_PATH=$PREFIX/bin/corral-agent
UNIT_PATH=/etc/systemd/system/corral-agent.service
UNIT_NAME=corral-agent.service

systemd_running() {
    [ "$USE_SYSTEMD" -eq 1 ] && [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# Root is needed for the real paths; a staged install (--destdir) or a user-owned prefix is not.
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
    case $PREFIX in
        /usr|/usr/*|/opt|/opt/*) die "run as root (or use --destdir to stage the files)" ;;
    esac
fi

if [ "$UNINSTALL" -eq 1 ]; then
    if systemd_running; then
        systemctl disable --now "$UNIT_NAME" 2>/dev/null || true
    fi
    rm -f "$DESTDIR$UNIT_PATH" "$DESTDIR$BIN_PATH"
    if systemd_running; then
        systemctl daemon-reload
    fi
    echo "removed $DESTDIR$BIN_PATH and $DESTDIR$UNIT_PATH (the state directory is kept)"
    exit 0
fi

# --- registration options: all or nothing -----------------------------------------------------
REGISTER=0
if [ -n "$CODE$ACT_ID$REGION$ENDPOINT" ]; then
    if [ -z "$CODE" ] || [ -z "$ACT_ID" ] || [ -z "$REGION" ] || [ -z "$ENDPOINT" ]; then
        die "registration needs all of --code, --id, --region and --endpoint"
    fi
    REGISTER=1
fi
if [ -n "$CA_BUNDLE" ]; then
    [ "$REGISTER" -eq 1 ] || die "--ca-bundle is only used with --code/--id/--region/--endpoint"
    [ -r "$CA_BUNDLE" ] || die "cannot read the CA bundle $CA_BUNDLE"
fi

# --- the binary -------------------------------------------------------------------------------
if [ -z "$BINARY" ]; then
    for candidate in "$SCRIPT_DIR/corral-agent" \
        "$SCRIPT_DIR/target/release-agent/corral-agent" \
        "$SCRIPT_DIR/target/release/corral-agent"; do
        if [ -f "$candidate" ] && [ -x "$candidate" ]; then
            BINARY=$candidate
            break
        fi
    done
    [ -n "$BINARY" ] || die "no corral-agent binary found; build it (cargo build -p corral-agent --profile release-agent) or pass --binary PATH"
fi
if [ ! -f "$BINARY" ] || [ ! -x "$BINARY" ]; then
    die "$BINARY is not an executable file"
fi

mkdir -p "$DESTDIR$PREFIX/bin"
# Copy beside the target and rename over it: replacing a running binary in place fails with
# "Text file busy", and a rename is atomic.
tmp_bin="$DESTDIR$BIN_PATH.tmp.$$"
cp "$BINARY" "$tmp_bin"
chmod 0755 "$tmp_bin"
mv -f "$tmp_bin" "$DESTDIR$BIN_PATH"
echo "installed $DESTDIR$BIN_PATH"

# --- the systemd unit -------------------------------------------------------------------------
mkdir -p "$DESTDIR${UNIT_PATH%/*}"
state_env=""
if [ -n "$STATE_DIR" ]; then
    state_env="Environment=CORRAL_AGENT_STATE_DIR=$STATE_DIR"
fi
tmp_unit="$DESTDIR$UNIT_PATH.tmp.$$"
{
    cat <<EOF
[Unit]
Description=Corral agent (role credentials and health pings for this managed machine)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=$BIN_PATH run
# The agent never exits on network or server errors (it retries with back-off); a restart only
# follows a crash or an upgrade.
Restart=always
RestartSec=5
Environment=CORRAL_AGENT_LOG=info
EOF
    [ -z "$state_env" ] || echo "$state_env"
    cat <<EOF

[Install]
WantedBy=multi-user.target
EOF
} >"$tmp_unit"
chmod 0644 "$tmp_unit"
mv -f "$tmp_unit" "$DESTDIR$UNIT_PATH"
echo "wrote $DESTDIR$UNIT_PATH"

# --- registration -----------------------------------------------------------------------------
if [ "$REGISTER" -eq 1 ]; then
    set -- register --code "$CODE" --id "$ACT_ID" --region "$REGION" --endpoint "$ENDPOINT"
    [ -z "$CA_BUNDLE" ] || set -- "$@" --ca-bundle "$CA_BUNDLE"
    [ -z "$STATE_DIR" ] || set -- "$@" --state-dir "$STATE_DIR"
    [ "$FORCE" -eq 0 ] || set -- "$@" --force
    instance_id=$(CORRAL_AGENT_NO_START_HINT=1 "$DESTDIR$BIN_PATH" "$@") || die "registration failed (see the message above); the binary and unit are installed, run install.sh again with the right options"
    echo "registered as $instance_id"
fi

# --- start ------------------------------------------------------------------------------------
if systemd_running; then
    systemctl daemon-reload
    if systemctl is-active --quiet "$UNIT_NAME"; then
        systemctl enable "$UNIT_NAME"
        systemctl restart "$UNIT_NAME"
        echo "restarted $UNIT_NAME"
    else
        systemctl enable --now "$UNIT_NAME"
        echo "enabled and started $UNIT_NAME"
    fi
else
    # The exact command that works for the options given: the staged path under --destdir,
    # and the state dir the registration went to.
    run_cmd="$(quote "$DESTDIR$BIN_PATH") run"
    [ -z "$STATE_DIR" ] || run_cmd="$run_cmd --state-dir $(quote "$STATE_DIR")"
    if [ -n "$DESTDIR" ]; then
        echo "staged under $DESTDIR; systemd was not called."
        echo "on the target machine, copy the staged files to / and run: systemctl daemon-reload && systemctl enable --now $UNIT_NAME"
        echo "to run the staged agent here instead: $run_cmd"
    else
        echo "systemd not used; start the agent with: $run_cmd"
        echo "or, where systemd runs: systemctl daemon-reload && systemctl enable --now $UNIT_NAME"
    fi
fi
