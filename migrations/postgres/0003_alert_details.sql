-- What an alert was about when it was last notified, so that any replica can list alerts with
-- their severity and summary (GET /api/v1/alerts) without evaluating them.
ALTER TABLE alert_state ADD COLUMN severity TEXT;
ALTER TABLE alert_state ADD COLUMN summary TEXT;
