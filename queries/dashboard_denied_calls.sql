-- dashboard_denied_calls: calls refused for lack of permission (errorCode in denial_codes), per principal and API.
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: principal (the identity's ARN, else its user name, else its type), event_provider, event_action, calls.
CREATE OR REPLACE VIEW dashboard_denied_calls AS
SELECT coalesce(aws.cloudtrail.user_identity.arn, user.name, aws.cloudtrail.user_identity.type, '(unknown)')
           AS principal,
       event.provider AS event_provider,
       event.action AS event_action,
       count(*) AS calls
FROM dashboard_events
WHERE aws.cloudtrail.error_code IN (SELECT code FROM denial_codes)
GROUP BY ALL
ORDER BY calls DESC, principal, event_provider, event_action;
