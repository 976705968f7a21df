-- dashboard_activity_by_account_region: calls per account and region, with failures and distinct identities.
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: cloud_account_id, cloud_region, events, failures, users.
CREATE OR REPLACE VIEW dashboard_activity_by_account_region AS
SELECT coalesce(cloud.account.id, '(unknown)') AS cloud_account_id,
       coalesce(cloud.region, '(unknown)') AS cloud_region,
       count(*) AS events,
       count(*) FILTER (event.outcome = 'failure') AS failures,
       count(DISTINCT user.name) AS users
FROM dashboard_events
GROUP BY ALL
ORDER BY events DESC, cloud_account_id, cloud_region;
