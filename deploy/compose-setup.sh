#!/bin/sh
# One-shot setup of the compose trial (service `setup` in deploy/compose.yaml), run with the
# lifeboat image after PostgreSQL is up: applies the migrations, creates the first admin
# (password from the admin-password secret) and writes one enrolment token per agent host into
# the shared `enrol` volume (mode 0600). Idempotent: what exists is kept.
set -eu
config=/etc/lifeboat/coordinator.toml
out=/run/lifeboat-enrol
umask 077

if lifeboat coordinator --config "$config" user add --name admin --role admin \
    < /run/secrets/admin-password; then
    echo "setup: admin created"
else
    echo "setup: admin not created (it exists already, or see the error above)"
fi

# host:site of every agent in the trial
for pair in linfen-fs01:linfen yuncheng-fs01:yuncheng dr-restore01:datong-dr; do
    host=${pair%%:*}
    site=${pair#*:}
    if [ -s "$out/$host.token" ]; then
        echo "setup: $host has its enrolment token"
        continue
    fi
    lifeboat coordinator --config "$config" enrol-token --host "$host" --site "$site" \
        --valid 7d > "$out/$host.token.new"
    mv "$out/$host.token.new" "$out/$host.token"
    echo "setup: enrolment token for $host written"
done
