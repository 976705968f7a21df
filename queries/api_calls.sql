-- api_calls: every event that records a call (an API call, a console sign-in, a service event): the lake's
--   events but CloudTrail Insights notices (eventType AwsCloudTrailInsight). A notice reports an unusual rate
--   of calls or errors and carries the API it is about in event.action and event.provider, so a view that
--   reads events counted it as the call itself (a RunInstances rate notice as "EC2 instances launched").
--   The base of every use-case and dashboard view; Insights notices stay in events.
-- Wazuh rule: none.
-- Columns: every column of events.
CREATE OR REPLACE VIEW api_calls AS
SELECT *
FROM events
WHERE aws.cloudtrail.event_type IS DISTINCT FROM 'AwsCloudTrailInsight';
