-- dashboard_events: the calls every dashboard_* view aggregates (api_calls: the events but Insights notices).
-- Wazuh rule: none. `trailhouse dashboards --since/--until` redefines this view as the same rows limited to
--   those UTC days, so each dataset and chart covers exactly the report's time range.
-- Columns: every column of events.
CREATE OR REPLACE VIEW dashboard_events AS
SELECT *
FROM api_calls;
