-- denial_codes: the errorCode values that mean "refused for lack of permission", as data.
-- Wazuh rule: 80250 matches the substring "AccessDenied" only, so EC2's Client.UnauthorizedOperation is
--   never a denial there and unrelated codes containing the text are. Here the set is explicit: add a row
--   for a service's code rather than widening a pattern.
-- Columns: code (the exact errorCode), used_by (services known to return it).
CREATE OR REPLACE VIEW denial_codes AS
SELECT *
FROM (VALUES
    ('AccessDenied', 'IAM, S3, STS, most query-protocol services'),
    ('AccessDeniedException', 'KMS, Lambda, Secrets Manager, SSM, DynamoDB, most JSON-protocol services'),
    ('Client.UnauthorizedOperation', 'EC2 (CloudTrail writes the EC2 code with the Client. prefix)'),
    ('UnauthorizedOperation', 'EC2 (as returned by the API, without the prefix)'),
    ('UnauthorizedAccess', 'CloudTrail, Organizations'),
    ('AuthorizationError', 'SNS'),
    ('AuthorizationErrorException', 'SNS (JSON protocol)'),
    ('Forbidden', 'API Gateway, S3 presigned requests'),
    ('VpceAccessDenied', 'S3 through a VPC endpoint whose policy refuses the call')
) AS t(code, used_by);
