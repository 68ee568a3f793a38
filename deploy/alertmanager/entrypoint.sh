#!/bin/sh
# Render the Alertmanager configuration template from environment variables, then start
# Alertmanager on the rendered copy.  Alertmanager 0.25 does not expand variables itself.
#
#   entrypoint.sh [ALERTMANAGER FLAGS...]    render, then exec alertmanager --config.file=...
#   entrypoint.sh --render-only              render and stop (used by the tests)
#
# Every '${ALERTMANAGER_*}' placeholder in the template must be set here or in the environment;
# values are inserted literally (a ' is doubled, as YAML single-quoted strings need).
# Secrets (SMTP password, Slack webhook URL) are not rendered: mount them as files, see
# docs/alerting.md.
set -eu

: "${ALERTMANAGER_TEMPLATE:=/etc/alertmanager/alertmanager.yml}"
: "${ALERTMANAGER_RENDERED:=/tmp/alertmanager/alertmanager.yml}"
: "${ALERTMANAGER_BIN:=alertmanager}"
: "${ALERTMANAGER_WEBHOOK_URL:=http://127.0.0.1:5001/alerts}"
: "${ALERTMANAGER_SLACK_CHANNEL:=#alerts}"
: "${ALERTMANAGER_EMAIL_TO:=oncall@example.com}"
: "${ALERTMANAGER_SMTP_HOST:=localhost}"
: "${ALERTMANAGER_SMTP_PORT:=587}"
: "${ALERTMANAGER_SMTP_FROM:=alertmanager@example.com}"
: "${ALERTMANAGER_SMTP_USERNAME:=}"
: "${ALERTMANAGER_GROUP_WAIT:=30s}"
: "${ALERTMANAGER_GROUP_INTERVAL:=5m}"
: "${ALERTMANAGER_REPEAT_INTERVAL:=4h}"
: "${ALERTMANAGER_CRITICAL_REPEAT_INTERVAL:=1h}"
export ALERTMANAGER_WEBHOOK_URL ALERTMANAGER_SLACK_CHANNEL ALERTMANAGER_EMAIL_TO \
  ALERTMANAGER_SMTP_HOST ALERTMANAGER_SMTP_PORT ALERTMANAGER_SMTP_FROM \
  ALERTMANAGER_SMTP_USERNAME ALERTMANAGER_GROUP_WAIT ALERTMANAGER_GROUP_INTERVAL \
  ALERTMANAGER_REPEAT_INTERVAL ALERTMANAGER_CRITICAL_REPEAT_INTERVAL

mkdir -p "$(dirname "$ALERTMANAGER_RENDERED")"
awk '
{
  line = $0; out = ""
  while (match(line, /\$\{ALERTMANAGER_[A-Z0-9_]+\}/)) {
    name = substr(line, RSTART + 2, RLENGTH - 3)
    if (!(name in ENVIRON)) {
      printf "entrypoint.sh: %s (line %d of the template) is not set\n", name, NR > "/dev/stderr"
      failed = 1; exit 2
    }
    value = ENVIRON[name]
    gsub(/\047/, "\047\047", value)
    out = out substr(line, 1, RSTART - 1) value
    line = substr(line, RSTART + RLENGTH)
  }
  print out line
}
END { if (failed) exit 2 }
' "$ALERTMANAGER_TEMPLATE" > "$ALERTMANAGER_RENDERED.tmp"
mv "$ALERTMANAGER_RENDERED.tmp" "$ALERTMANAGER_RENDERED"

if [ "${1:-}" = "--render-only" ]; then
  exit 0
fi
exec "$ALERTMANAGER_BIN" --config.file="$ALERTMANAGER_RENDERED" "$@"
