#!/bin/sh
# Creates the secrets of the compose trial as files (deploy/compose.yaml, `secrets:`), random,
# each readable by the one container user that needs it: lifeboat's files belong to uid 10001
# mode 0600 (lifeboat refuses secret files that group or others may read); the PostgreSQL
# password to uid 999 (the postgres image) and readable by the lifeboat group, since both
# read it; Garage's to root. Existing files are kept. Run as root:
#
#   sudo sh deploy/compose-secrets.sh deploy/secrets
set -eu
dir=${1:-deploy/secrets}
mkdir -p "$dir"
chmod 0755 "$dir"

# new NAME OWNER MODE COMMAND...: writes the output of COMMAND to NAME unless it exists.
new() {
    name=$1 owner=$2 mode=$3
    shift 3
    [ -s "$dir/$name" ] && return 0
    (umask 077 && "$@" > "$dir/$name.tmp")
    chown "$owner" "$dir/$name.tmp"
    chmod "$mode" "$dir/$name.tmp"
    mv "$dir/$name.tmp" "$dir/$name"
}
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

new db-password 999:10001 0640 hex 24
new admin-password 10001:10001 0600 hex 16
new repo-password-linfen 10001:10001 0600 hex 32
new repo-password-yuncheng 10001:10001 0600 hex 32
new garage-rpc-secret 0:0 0600 hex 32
new garage-admin-token 0:0 0600 hex 32
new garage-key-id 10001:10001 0600 sh -c "printf GK; od -An -N12 -tx1 /dev/urandom | tr -d ' \n'"
new garage-secret-key 10001:10001 0600 hex 32
# garage-init runs as uid 10001 too (it reads the key), with its own copy of the admin token.
new garage-init-admin-token 10001:10001 0600 cat "$dir/garage-admin-token"
echo "secrets in $dir (the admin's password: $dir/admin-password)"
