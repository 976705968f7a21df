-- dashboard_ec2_changes_by_day: EC2 calls that change something (readOnly false), per UTC day and action,
--   refused ones included (event_outcome tells them apart).
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: day, event_action, event_outcome, events.
CREATE OR REPLACE VIEW dashboard_ec2_changes_by_day AS
SELECT event_date AS day,
       event.action AS event_action,
       coalesce(event.outcome, 'unknown') AS event_outcome,
       count(*) AS events
FROM dashboard_events
WHERE event.provider = 'ec2.amazonaws.com'
  AND aws.cloudtrail.read_only = false
GROUP BY ALL
ORDER BY day, events DESC, event_action, event_outcome;
