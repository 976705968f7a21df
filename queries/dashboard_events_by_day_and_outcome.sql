-- dashboard_events_by_day_and_outcome: events per UTC day, stacked by outcome (success, failure, unknown).
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: day, event_outcome, events.
CREATE OR REPLACE VIEW dashboard_events_by_day_and_outcome AS
SELECT event_date AS day,
       coalesce(event.outcome, 'unknown') AS event_outcome,
       count(*) AS events
FROM dashboard_events
GROUP BY ALL
ORDER BY day, event_outcome;
