#!/usr/bin/env bash
# lifeboat quick start: a branch's finance department backed up to a local repository and copied
# to an "off-site" one (both plain directories here), restored elsewhere and verified, checked,
# retention planned, and read back with restic. Everything happens under one work directory.
#
#   ./examples/quickstart.sh [WORK_DIR]          (default: /tmp/lifeboat-quickstart)
#
# Uses $LIFEBOAT_BIN if set, else builds target/release/lifeboat (about 5 minutes the first time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

BIN="${LIFEBOAT_BIN:-}"
if [ -z "$BIN" ]; then
    step "building lifeboat (cargo build --release)"
    cargo build --release --locked --quiet
    BIN="$PWD/target/release/lifeboat"
fi
WORK="${1:-${TMPDIR:-/tmp}/lifeboat-quickstart}"
rm -rf "$WORK"
mkdir -p "$WORK/policies" "$WORK/secrets" "$WORK/branch/finance/ledger" "$WORK/branch/finance/reports"

step "department data in $WORK/branch/finance"
for q in 1 2 3 4; do
    for i in $(seq 1 25); do
        printf 'voucher %s-%03d, account 6001-%04d, amount %d.%02d CNY\n' "$q" "$i" "$((i * 37 % 9000))" "$((i * 1931 % 100000))" "$((i % 100))"
    done > "$WORK/branch/finance/ledger/2026Q$q.csv"
done
cp README.md "$WORK/branch/finance/reports/lifeboat-readme.txt"
head -c 3000000 /dev/urandom > "$WORK/branch/finance/reports/scan-0001.pdf"
mkdir -p "$WORK/branch/finance/报表"
echo "第四季度财务报表" > "$WORK/branch/finance/报表/2026年第四季度.txt"
echo "scratch" > "$WORK/branch/finance/reports/draft.tmp"

# The repository password lives in a file only its owner can read (never in the policy).
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/secrets/repo.pass"
chmod 600 "$WORK/secrets/repo.pass"

cat > "$WORK/policies/quickstart.toml" <<EOF
[tiers.TQ]
name = "Quick-start tier"
rpo = "1d"
rto-it = "1d"
rto-business = "2d"
copies = 3            # production + local repository + off-site copy
media = 1
offsite = 1
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "7d"
read-data-window = "90d"

[sites.branch]
name = "Quick-start branch"
role = "branch"
region = "home"
timezone = "Asia/Shanghai"

[repositories.quickstart-local]
url = "$WORK/repos/local"
location = "local"
password = { file = "$WORK/secrets/repo.pass" }

[repositories.quickstart-offsite]
url = "file://$WORK/repos/offsite"
location = "same-city"
password = { file = "$WORK/secrets/repo.pass" }

[systems.quickstart-finance]
name = "Finance share"
department = "finance"
site = "branch"
host = "branch-fs01"
tier = "TQ"
paths = ["$WORK/branch/finance"]
excludes = ["*.tmp"]
repositories = ["quickstart-local", "quickstart-offsite"]

[[systems.quickstart-finance.schedules]]
job = "backup"
cron = "30 1 * * *"

[[systems.quickstart-finance.schedules]]
job = "copy"
cron = "0 2 * * *"

[[systems.quickstart-finance.schedules]]
job = "check"
cron = "@daily"

[[systems.quickstart-finance.schedules]]
job = "read-data"
cron = "@weekly"

[[systems.quickstart-finance.schedules]]
job = "forget"
cron = "@weekly"

[systems.quickstart-finance.retention]
keep-daily = 7
keep-monthly = 12
EOF

export LIFEBOAT_POLICY="$WORK/policies" LIFEBOAT_STATE_DIR="$WORK/state"

step "lifeboat policy check"
"$BIN" policy check
step "lifeboat policy check policies/   (the example bank: head office, data centre, DR site, branches)"
"$BIN" policy check policies/

step "lifeboat init --system quickstart-finance"
"$BIN" init --system quickstart-finance

step "lifeboat backup --system quickstart-finance   (local snapshot, then copy off-site)"
"$BIN" backup --system quickstart-finance

step "a day later: one file changes, one is added; incremental backup"
echo "voucher 4-026, account 6001-0962, amount 50000.00 CNY" >> "$WORK/branch/finance/ledger/2026Q4.csv"
echo "new memo" > "$WORK/branch/finance/reports/memo.txt"
"$BIN" backup --system quickstart-finance

step "lifeboat snapshots --system quickstart-finance"
"$BIN" snapshots --system quickstart-finance

step "the branch is lost: restore from the off-site copy only, verified against the content hashes"
"$BIN" restore --system quickstart-finance --repo quickstart-offsite --target "$WORK/restored" --verify
rm "$WORK/branch/finance/reports/draft.tmp"   # excluded from the backup
diff -r "$WORK/branch/finance" "$WORK/restored$WORK/branch/finance"
echo "restored tree is identical to the source"

step "lifeboat check --system quickstart-finance --read-data"
"$BIN" check --system quickstart-finance --read-data

step "lifeboat forget --system quickstart-finance --dry-run   (the retention plan, with reasons)"
"$BIN" forget --system quickstart-finance --dry-run

if command -v restic >/dev/null 2>&1; then
    step "restic reads the same repository (no lifeboat needed to recover)"
    RESTIC_PASSWORD_FILE="$WORK/secrets/repo.pass" restic -r "$WORK/repos/offsite" --no-cache snapshots
fi

step "done; run records are in $WORK/state/runs"
ls "$WORK/state/runs" | head
