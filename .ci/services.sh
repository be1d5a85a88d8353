#!/usr/bin/env bash
# Starts the test services on loopback (see docs/test-services.md):
#   - sshd on 127.0.0.1:$SFTP_PORT (default 2222), key-only user $SFTP_USER chrooted (internal-sftp)
#     under $STATE/chroot, writable dir `upload`;
#   - aiosmtpd (.ci/smtp_sink.py) on 127.0.0.1:$SMTP_PORT (default 2525), STARTTLS + AUTH required;
#   - PostgreSQL (.ci/pg.sh) on 127.0.0.1:$PG_PORT (default 5433), TLS + SCRAM, writer/viewer roles;
#   - Garage (S3 API) on 127.0.0.1:3900, by .ci/garage.sh (built with cargo install the first time).
# Writes $STATE/env (source it) exporting SSHD_PID, SMTP_PID, TEST_SFTP_* and TEST_SMTP_*.
# Idempotent: stops the instances a previous run of this script started, then starts afresh.
# Needs root and the Debian packages openssh-server, python3-aiosmtpd and postgresql.
set -euo pipefail
STATE=${STATE:-/srv/ocitest}; SFTP_PORT=${SFTP_PORT:-2222}; SMTP_PORT=${SMTP_PORT:-2525}; SFTP_USER=${SFTP_USER:-sftptest}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Stop what an earlier run started (only processes whose command line names our state dir).
stop_previous() {
  local pid
  if [ -f "$STATE/pg/data/postmaster.pid" ]; then
    su postgres -s /bin/sh -c "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl -D $STATE/pg/data stop -m fast -w" >/dev/null 2>&1 || true
  fi
  for f in "$STATE/sshd.pid" "$STATE/smtp.pid" "$STATE/garage/garage.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$STATE"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}
stop_previous

rm -rf "$STATE"; install -d -m 0755 "$STATE" "$STATE/chroot" "$STATE/keys" "$STATE/mail"
install -d -m 0755 /run/sshd
id "$SFTP_USER" >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin "$SFTP_USER"
usermod -p '*' "$SFTP_USER"
install -d -o "$SFTP_USER" -g "$SFTP_USER" -m 0755 "$STATE/chroot/upload"
ssh-keygen -q -t ed25519 -N '' -f "$STATE/keys/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$STATE/keys/client_ed25519"
# Extra client key for tests of RSA + passphrase-protected keys (PEM format).
ssh-keygen -q -t rsa -b 3072 -m PEM -N 'rsa-key-passphrase' -f "$STATE/keys/client_rsa"
cat "$STATE/keys/client_ed25519.pub" "$STATE/keys/client_rsa.pub" > "$STATE/keys/authorized_keys_$SFTP_USER"
chmod 0644 "$STATE/keys/authorized_keys_$SFTP_USER"
echo "[127.0.0.1]:$SFTP_PORT $(cut -d' ' -f1,2 "$STATE/keys/host_ed25519.pub")" > "$STATE/keys/known_hosts"
cat > "$STATE/sshd_config" <<CONF
Port $SFTP_PORT
ListenAddress 127.0.0.1
HostKey $STATE/keys/host_ed25519
PidFile none
AuthorizedKeysFile $STATE/keys/authorized_keys_%u
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers $SFTP_USER
StrictModes yes
Subsystem sftp internal-sftp
Match User $SFTP_USER
    ChrootDirectory $STATE/chroot
    ForceCommand internal-sftp
    AllowTcpForwarding no
    X11Forwarding no
CONF
/usr/sbin/sshd -t -f "$STATE/sshd_config"
/usr/sbin/sshd -D -e -f "$STATE/sshd_config" >"$STATE/sshd.log" 2>&1 & SSHD_PID=$!
echo "$SSHD_PID" > "$STATE/sshd.pid"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -addext basicConstraints=critical,CA:FALSE \
  -keyout "$STATE/keys/smtp_key.pem" -out "$STATE/keys/smtp_cert.pem" 2>/dev/null
/usr/bin/python3 "$HERE/smtp_sink.py" 127.0.0.1 "$SMTP_PORT" "$STATE/mail/Maildir" --cert "$STATE/keys/smtp_cert.pem" \
  --key "$STATE/keys/smtp_key.pem" --user alice --password s3cret --require-auth >"$STATE/smtp.log" 2>&1 & SMTP_PID=$!
echo "$SMTP_PID" > "$STATE/smtp.pid"
for port in "$SFTP_PORT" "$SMTP_PORT"; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || { cat "$STATE"/*.log; exit 1; }
done
cat > "$STATE/env" <<ENV
export SSHD_PID=$SSHD_PID SMTP_PID=$SMTP_PID
export TEST_SFTP_HOST=127.0.0.1 TEST_SFTP_PORT=$SFTP_PORT TEST_SFTP_USER=$SFTP_USER TEST_SFTP_DIR=upload
export TEST_SFTP_KEY=$STATE/keys/client_ed25519 TEST_SFTP_KNOWN_HOSTS=$STATE/keys/known_hosts
export TEST_SFTP_CHROOT=$STATE/chroot
export TEST_SFTP_RSA_KEY=$STATE/keys/client_rsa TEST_SFTP_RSA_PASSPHRASE=rsa-key-passphrase
export TEST_SMTP_HOST=127.0.0.1 TEST_SMTP_PORT=$SMTP_PORT TEST_SMTP_USER=alice TEST_SMTP_PASS=s3cret
export TEST_SMTP_MAILDIR=$STATE/mail/Maildir TEST_SMTP_CA=$STATE/keys/smtp_cert.pem
ENV
STATE="$STATE" bash "$HERE/pg.sh"
echo "test services up: sshd pid $SSHD_PID on 127.0.0.1:$SFTP_PORT, smtp sink pid $SMTP_PID on 127.0.0.1:$SMTP_PORT; . $STATE/env"

# The S3-compatible object store for the object-storage vault tests (appends to $STATE/env).
STATE="$STATE" bash "$HERE/garage.sh"
