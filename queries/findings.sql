-- findings: every use case as one alert stream, with Wazuh's rule ids and levels so teams migrating from
--   Wazuh can map them (80202 → 3, 80203 → 4, 80250 → 5, 80253 → 3, 80254 → 5, 80255 → 10).
-- Wazuh rule: 80202, 80203, 80250, 80253, 80254, 80255 (see each view); console_login_spray has none (null).
-- Columns: rule (the view), wazuh_rule_id, level, title, "@timestamp" (bursts: their last failure), account_id,
--   region, user_name, source_ip (bursts: every address, comma-separated), event_id (bursts: the last one),
--   event_date (UTC date of "@timestamp", whatever the session's TimeZone). A filter on it keeps those days'
--   rows; the bursts window over every failure first, so every day is read.
CREATE OR REPLACE VIEW findings AS
WITH event_alerts AS (
    SELECT 'ec2_instance_run' AS rule, 80202 AS wazuh_rule_id, 3 AS level, 'EC2 instances launched' AS title, *
    FROM ec2_instance_run
    UNION ALL BY NAME
    SELECT 'ec2_instance_start' AS rule, 80202 AS wazuh_rule_id, 3 AS level, 'EC2 instances started' AS title, * FROM ec2_instance_start
    UNION ALL BY NAME
    SELECT 'ec2_instance_stop' AS rule, 80202 AS wazuh_rule_id, 3 AS level, 'EC2 instances stopped' AS title, * FROM ec2_instance_stop
    UNION ALL BY NAME
    SELECT 'ec2_security_group_created' AS rule, 80202 AS wazuh_rule_id, 3 AS level, 'EC2 security group created' AS title, * FROM ec2_security_group_created
    UNION ALL BY NAME
    SELECT 'ec2_address_allocated' AS rule, 80202 AS wazuh_rule_id, 3 AS level, 'Elastic IP address allocated' AS title, * FROM ec2_address_allocated
    UNION ALL BY NAME
    SELECT 'ec2_address_associated' AS rule, 80202 AS wazuh_rule_id, 3 AS level, 'Elastic IP address associated' AS title, * FROM ec2_address_associated
    UNION ALL BY NAME
    SELECT 'ec2_denied' AS rule, 80203 AS wazuh_rule_id, 4 AS level, 'EC2 call denied: ' || event.action AS title, * FROM ec2_denied
    UNION ALL BY NAME
    SELECT 'iam_user_created' AS rule, 80202 AS wazuh_rule_id, 3 AS level, 'IAM user created: ' || coalesce(user.target.name, '?') AS title, *
    FROM iam_user_created
    UNION ALL BY NAME
    SELECT 'iam_user_creation_denied' AS rule, 80250 AS wazuh_rule_id, 5 AS level, 'IAM user creation denied: ' || coalesce(user.target.name, '?') AS title, *
    FROM iam_user_creation_denied
    UNION ALL BY NAME
    SELECT 'console_login_success' AS rule, 80253 AS wazuh_rule_id, 3 AS level, 'Console login' AS title, * FROM console_login_success
    UNION ALL BY NAME
    SELECT 'console_login_failure' AS rule, 80254 AS wazuh_rule_id, 5 AS level, 'Console login failed' AS title, * FROM console_login_failure
)
SELECT rule, wazuh_rule_id, level, title, "@timestamp", cloud.account.id AS account_id, cloud.region AS region,
       user.name AS user_name, coalesce(source.ip, source.address) AS source_ip, event.id AS event_id, event_date
FROM event_alerts
UNION ALL
SELECT 'console_login_break_in', 80255, 10,
       'Possible break-in: ' || failures || ' failed console logins for ' || coalesce(user_name, '?')
           || ' within ' || (epoch(window_end) - epoch(window_start))::INTEGER || ' s',
       window_end, account_id, region, user_name, array_to_string(source_ips, ', '), last_event_id,
       CAST(timezone('UTC', window_end) AS DATE)
FROM console_login_break_in
UNION ALL
SELECT 'console_login_spray', NULL, 10,
       'Password spray: ' || users || ' users failed console logins from ' || source_ip,
       window_end, array_to_string(account_ids, ', '), region, array_to_string(user_names, ', '), source_ip,
       last_event_id, CAST(timezone('UTC', window_end) AS DATE)
FROM console_login_spray;
