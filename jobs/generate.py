"""A realistic synthetic CloudTrail bucket, deterministic per seed.

Shaped like a real trail: S3 layout `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`,
files per 5-minute delivery window (a few to thousands of events, delivered minutes
late, so events near midnight land in the next day's folder), occasional duplicate
deliveries, many services and APIs, every identity type, ~100 user agents, IPv4,
IPv6, AWS service hostnames and "AWS Internal", ~5% errors, console logins with a
brute-force burst, nested payloads, and a daily digest per account and region.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec
from isal import igzip

#: Bumped whenever the output changes, so cached buckets (trailhouse bench) are rebuilt.
GENERATOR_VERSION = 3
REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "ap-northeast-1", "sa-east-1",
           "ca-central-1")
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "trent")
ROLES = ("Admin", "ReadOnly", "DevOps", "DataPipeline", "SecurityAudit", "OrganizationAccountAccessRole")
SERVICES = ("lambda.amazonaws.com", "ec2.amazonaws.com", "cloudformation.amazonaws.com", "config.amazonaws.com",
            "autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com", "ssm.amazonaws.com")

# (eventSource prefix, eventName, readOnly, weight)
APIS = [
    ("ec2", "DescribeInstances", True, 60), ("ec2", "DescribeSecurityGroups", True, 20),
    ("ec2", "DescribeVolumes", True, 15), ("ec2", "DescribeVpcs", True, 10), ("ec2", "DescribeRegions", True, 8),
    ("ec2", "RunInstances", False, 4), ("ec2", "StartInstances", False, 4), ("ec2", "StopInstances", False, 4),
    ("ec2", "TerminateInstances", False, 2), ("ec2", "CreateSecurityGroup", False, 2),
    ("ec2", "AuthorizeSecurityGroupIngress", False, 2), ("ec2", "AllocateAddress", False, 1),
    ("ec2", "AssociateAddress", False, 1), ("ec2", "CreateTags", False, 4), ("ec2", "CreateKeyPair", False, 1),
    ("iam", "GetUser", True, 6), ("iam", "ListUsers", True, 5), ("iam", "ListRoles", True, 5),
    ("iam", "GetRole", True, 5), ("iam", "CreateUser", False, 1), ("iam", "DeleteUser", False, 1),
    ("iam", "CreateAccessKey", False, 1), ("iam", "AttachUserPolicy", False, 1), ("iam", "PutRolePolicy", False, 1),
    ("iam", "CreateLoginProfile", False, 1), ("iam", "AddUserToGroup", False, 1), ("iam", "UpdateUser", False, 1),
    ("iam", "CreateGroup", False, 1),
    ("s3", "GetObject", True, 40), ("s3", "PutObject", False, 20), ("s3", "ListBuckets", True, 6),
    ("s3", "HeadObject", True, 10), ("s3", "DeleteObject", False, 3), ("s3", "GetBucketPolicy", True, 3),
    ("s3", "PutBucketPolicy", False, 1), ("s3", "CreateBucket", False, 1),
    ("sts", "AssumeRole", True, 25), ("sts", "GetCallerIdentity", True, 10), ("sts", "GetSessionToken", True, 2),
    ("kms", "Decrypt", True, 25), ("kms", "GenerateDataKey", True, 10), ("kms", "Encrypt", True, 5),
    ("kms", "ScheduleKeyDeletion", False, 1), ("kms", "DisableKey", False, 1),
    ("lambda", "Invoke", False, 8), ("lambda", "ListFunctions20150331", True, 4),
    ("lambda", "CreateFunction20150331", False, 1), ("lambda", "UpdateFunctionCode20150331v2", False, 1),
    ("rds", "DescribeDBInstances", True, 5), ("rds", "CreateDBSnapshot", False, 1),
    ("rds", "ModifyDBInstance", False, 1), ("cloudtrail", "DescribeTrails", True, 3),
    ("cloudtrail", "LookupEvents", True, 2), ("cloudtrail", "StopLogging", False, 1),
    ("cloudtrail", "PutEventSelectors", False, 1), ("logs", "CreateLogStream", False, 8),
    ("logs", "PutLogEvents", False, 8), ("ssm", "GetParameter", True, 6), ("ssm", "SendCommand", False, 1),
    ("secretsmanager", "GetSecretValue", True, 4), ("dynamodb", "Query", True, 6), ("dynamodb", "PutItem", False, 4),
    ("signin", "ConsoleLogin", False, 3),
]
#: Credential sessions live per account, identity type and hour (see `_World.session`).
SESSIONS_PER_HOUR = 6
EC2_DENIABLE = {"RunInstances", "StartInstances", "StopInstances", "CreateSecurityGroup", "AllocateAddress",
                "AssociateAddress", "TerminateInstances"}
CONSOLE_UA = [
    f"Mozilla/5.0 ({os_}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
    for os_ in ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64")
    for v in (118, 120, 124, 126)
] + [
    f"Mozilla/5.0 ({os_}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
    for os_ in ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 14.1") for v in (115, 121, 125)
]


def _user_agents() -> list[str]:
    uas = [f"aws-cli/{cli} Python/{py} {os_} exe/x86_64.{dist} prompt/off command/{cmd}"
           for cli in ("2.13.5", "2.15.30", "2.17.4") for py in ("3.11.6", "3.11.8")
           for os_, dist in (("Linux/5.15.0-1051-aws", "amzn.2"), ("Darwin/23.4.0", "macos"),
                             ("Windows/10", "windows"))
           for cmd in ("ec2.describe-instances", "s3.cp")]
    uas += [f"Boto3/{b} md/Botocore#{b2} ua/2.0 os/linux#5.10.{k} md/arch#x86_64 lang/python#3.{p}.{k} "
            f"md/pyimpl#CPython cfg/retry-mode#legacy Botocore/{b2}"
            for b, b2 in (("1.28.57", "1.31.57"), ("1.34.84", "1.34.84"), ("1.35.10", "1.35.10"))
            for p in (9, 10, 11, 12) for k in (1, 2)]
    uas += [f"aws-sdk-go/1.{m}.{n} (go1.21.{n}; linux; amd64)" for m in (44, 50, 51) for n in (3, 7)]
    uas += [f"aws-sdk-java/2.{m}.{n} Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.{n}" for m in (20, 21) for n in (4, 9)]
    uas += [f"APN/1.0 HashiCorp/1.0 Terraform/1.{m}.{n} (+https://www.terraform.io) terraform-provider-aws/5.{m}.0"
            for m in (5, 6, 7) for n in (0, 3)]
    uas += CONSOLE_UA
    uas += ["signin.amazonaws.com", "console.amazonaws.com", "AWS Internal", "lambda.amazonaws.com",
            "cloudformation.amazonaws.com", "autoscaling.amazonaws.com", "ssm.amazonaws.com",
            "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488]"]
    return uas


@dataclass(frozen=True)
class Spec:
    events: int
    seed: int = 1
    accounts: int = 2
    regions: int = 2
    days: int = 2
    start: dt.date = dt.date(2026, 11, 1)


class _World:
    """The accounts, people and addresses of one seed."""

    def __init__(self, spec: Spec) -> None:
        rng = random.Random(spec.seed)
        self.rng = rng
        self.accounts = [str(rng.randrange(10**11, 10**12 - 1)).zfill(12) for _ in range(spec.accounts)]
        self.regions = list(REGIONS[: max(1, min(spec.regions, len(REGIONS)))])
        self.uas = _user_agents()
        self.cli_uas = [u for u in self.uas if not u.startswith("Mozilla") and "amazonaws" not in u and "AWS" not in u]
        self.ipv4 = [f"{rng.choice((3, 18, 34, 52, 54, 81, 93, 185, 203))}.{rng.randrange(256)}."
                     f"{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(200)]
        self.ipv6 = [f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}" for _ in range(20)]
        self.attacker_ip = "198.51.100.77"
        self.seed = spec.seed
        self._sessions: dict[tuple, dict] = {}

    def session(self, account: str, t: dt.datetime, kind: str) -> dict:
        """One of a few credential sessions live in this account this hour, as in real trails.

        A session (its key, name, start time) serves many calls: real trails hold a few dozen access keys
        for tens of thousands of events, not one key per event.
        """
        hour = t.replace(minute=0, second=0, microsecond=0)
        slot = self.rng.randrange(SESSIONS_PER_HOUR)
        found = self._sessions.get((account, hour, kind, slot))
        if found is None:
            if len(self._sessions) > 50_000:
                self._sessions.clear()
            r = random.Random(f"{self.seed}|{account}|{hour:%Y%m%d%H}|{kind}|{slot}")
            found = {"key": "ASIA" + "".join(r.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=16)),
                     "started": _iso(hour - dt.timedelta(seconds=r.randrange(60, 3600))),
                     "user": r.choice(USERS), "role": r.choice(ROLES), "mfa": r.choice(["true", "false"]),
                     "name": r.choice([r.choice(USERS) + "@example.com", f"session-{r.randrange(10**6)}",
                                       "botocore-session-" + str(r.randrange(10**9))]),
                     "source_identity": r.choice(USERS) + "@example.com" if r.random() < 0.15 else None,
                     "credential": "".join(r.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=24))}
            self._sessions[(account, hour, kind, slot)] = found
        return found

    def actor(self, account: str, t: dt.datetime) -> dict:
        rng = self.rng
        kind = rng.choices(["IAMUser", "AssumedRole", "AWSService", "Root", "FederatedUser", "IdentityCenterUser"],
                           [40, 40, 12, 2, 5, 1])[0]
        if kind == "AWSService":
            return {"type": "AWSService", "invokedBy": rng.choice(SERVICES)}
        s = self.session(account, t, kind)
        if kind == "IAMUser":  # long-lived access keys, one per user
            name = s["user"]
            return {"type": "IAMUser", "principalId": "AIDA" + _hexid(name, account), "arn":
                    f"arn:aws:iam::{account}:user/{name}", "accountId": account,
                    "accessKeyId": "AKIA" + _hexid(name + "/key", account)[:16], "userName": name}
        if kind == "AssumedRole":
            role, session = s["role"], s["name"]
            rid = "AROA" + _hexid(role, account)
            out = {"type": "AssumedRole", "principalId": f"{rid}:{session}",
                   "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "accountId": account,
                   "accessKeyId": s["key"], "sessionContext": {
                       "sessionIssuer": {"type": "Role", "principalId": rid, "arn": f"arn:aws:iam::{account}:role/{role}",
                                         "accountId": account, "userName": role},
                       "webIdFederationData": {},
                       "attributes": {"creationDate": s["started"], "mfaAuthenticated": s["mfa"]}}}
            if s["source_identity"]:  # the role was assumed with a source identity set
                out["sessionContext"]["sourceIdentity"] = s["source_identity"]
            return out
        if kind == "IdentityCenterUser":
            return {"type": "IdentityCenterUser", "accountId": account, "onBehalfOf": {
                "userId": str(uuid.UUID(hashlib.md5(f"{s['user']}{account}".encode()).hexdigest())),
                "identityStoreArn": f"arn:aws:identitystore::{account}:identitystore/d-{_hexid('store', account)[:10]}"},
                    "credentialId": s["credential"]}
        if kind == "Root":
            return {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                    "accountId": account, "accessKeyId": s["key"]}
        name = s["user"]
        return {"type": "FederatedUser", "principalId": f"{account}:{name}",
                "arn": f"arn:aws:sts::{account}:federated-user/{name}", "accountId": account, "accessKeyId": s["key"],
                "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": "AIDA" + _hexid(name, account),
                                                     "arn": f"arn:aws:iam::{account}:user/{name}",
                                                     "accountId": account, "userName": name},
                                   "attributes": {"creationDate": s["started"], "mfaAuthenticated": "false"}}}

    def source(self, actor: dict) -> tuple[str, str]:
        rng = self.rng
        if actor["type"] == "AWSService":
            return actor["invokedBy"], actor["invokedBy"]
        r = rng.random()
        if r < 0.06:
            return "AWS Internal", "AWS Internal"
        if r < 0.12:
            svc = rng.choice(SERVICES)
            return svc, svc
        ip = rng.choice(self.ipv6) if r < 0.18 else rng.choice(self.ipv4)
        return ip, rng.choice(self.uas[:-8])


def _hexid(name: str, account: str) -> str:
    return hashlib.sha1(f"{name}{account}".encode()).hexdigest()[:17].upper()


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _payload(w: _World, service: str, name: str, account: str, region: str) -> tuple[dict | None, dict | None]:
    rng = w.rng
    iid = f"i-{rng.randrange(16**17):017x}"
    if name in ("RunInstances",):
        req = {"instancesSet": {"items": [{"imageId": f"ami-{rng.randrange(16**17):017x}", "minCount": 1,
                                           "maxCount": rng.randint(1, 4)}]},
               "instanceType": rng.choice(["t3.micro", "m5.large", "p3.16xlarge", "c5.4xlarge"]),
               "blockDeviceMapping": {}, "monitoring": {"enabled": False}, "disableApiTermination": False,
               "clientToken": str(uuid.UUID(int=rng.getrandbits(128))),
               "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [
                   {"key": "Name", "value": f"worker-{rng.randrange(100)}"}, {"key": "team", "value": "platform"}]}]}}
        resp = {"requestId": str(uuid.UUID(int=rng.getrandbits(128))), "reservationId": f"r-{rng.randrange(16**17):017x}",
                "ownerId": account, "groupSet": {}, "instancesSet": {"items": [{
                    "instanceId": iid, "imageId": req["instancesSet"]["items"][0]["imageId"],
                    "instanceState": {"code": 0, "name": "pending"}, "privateDnsName": f"ip-10-0-{rng.randrange(256)}"
                    f"-{rng.randrange(256)}.{region}.compute.internal", "amiLaunchIndex": 0, "productCodes": {},
                    "instanceType": req["instanceType"], "launchTime": 1700000000000,
                    "placement": {"availabilityZone": region + "a", "tenancy": "default"},
                    "monitoring": {"state": "disabled"}, "subnetId": f"subnet-{rng.randrange(16**8):08x}",
                    "vpcId": f"vpc-{rng.randrange(16**8):08x}", "privateIpAddress": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                    "stateReason": {"code": "pending", "message": "pending"}, "architecture": "x86_64",
                    "rootDeviceType": "ebs", "rootDeviceName": "/dev/xvda", "blockDeviceMapping": {},
                    "virtualizationType": "hvm", "hypervisor": "xen", "networkInterfaceSet": {"items": []},
                    "ebsOptimized": False, "enaSupport": True, "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
                    "capacityReservationSpecification": {"capacityReservationPreference": "open"},
                    "enclaveOptions": {"enabled": False}, "metadataOptions": {"state": "pending", "httpTokens":
                                                                              "required", "httpEndpoint": "enabled"}}]}}
        return req, resp
    if name in ("StartInstances", "StopInstances", "TerminateInstances"):
        state = {"StartInstances": ("pending", 0), "StopInstances": ("stopping", 64),
                 "TerminateInstances": ("shutting-down", 32)}[name]
        return ({"instancesSet": {"items": [{"instanceId": iid}]}, "force": False},
                {"requestId": str(uuid.UUID(int=rng.getrandbits(128))), "instancesSet": {"items": [
                    {"instanceId": iid, "currentState": {"code": state[1], "name": state[0]},
                     "previousState": {"code": 16, "name": "running"}}]}})
    if name == "CreateSecurityGroup":
        return ({"groupName": f"sg-{rng.choice(['web', 'db', 'debug', 'open'])}-{rng.randrange(99)}",
                 "groupDescription": "created by automation", "vpcId": f"vpc-{rng.randrange(16**8):08x}"},
                {"requestId": str(uuid.UUID(int=rng.getrandbits(128))), "_return": True,
                 "groupId": f"sg-{rng.randrange(16**17):017x}"})
    if name == "AuthorizeSecurityGroupIngress":
        return ({"groupId": f"sg-{rng.randrange(16**17):017x}", "ipPermissions": {"items": [
            {"ipProtocol": "tcp", "fromPort": p, "toPort": p, "groups": {},
             "ipRanges": {"items": [{"cidrIp": rng.choice(["0.0.0.0/0", "10.0.0.0/8"])}]}, "ipv6Ranges": {},
             "prefixListIds": {}} for p in rng.sample([22, 80, 443, 3389, 5432], 2)]}},
                {"requestId": str(uuid.UUID(int=rng.getrandbits(128))), "_return": True})
    if name == "AllocateAddress":
        return ({"domain": "vpc"}, {"requestId": str(uuid.UUID(int=rng.getrandbits(128))),
                                    "publicIp": rng.choice(w.ipv4), "domain": "vpc",
                                    "allocationId": f"eipalloc-{rng.randrange(16**17):017x}"})
    if name == "AssociateAddress":
        return ({"instanceId": iid, "allocationId": f"eipalloc-{rng.randrange(16**17):017x}"},
                {"requestId": str(uuid.UUID(int=rng.getrandbits(128))), "_return": True,
                 "associationId": f"eipassoc-{rng.randrange(16**17):017x}"})
    if name == "CreateGroup":
        group = rng.choice(["admins", "developers", "auditors", "break-glass"])
        return ({"groupName": group}, {"group": {"path": "/", "groupName": group, "groupId": "AGPA" + _hexid(group, account),
                                                 "arn": f"arn:aws:iam::{account}:group/{group}",
                                                 "createDate": "Nov 1, 2026 10:00:00 AM"}})
    if name == "UpdateUser":
        old = rng.choice(USERS)
        return {"userName": old, "newUserName": old + rng.choice(["-old", "2", "-admin"])}, None
    if name in ("CreateUser", "DeleteUser", "CreateLoginProfile", "CreateAccessKey", "AttachUserPolicy"):
        target = rng.choice(USERS + ("svc-backup", "temp-admin", "ci-deployer"))
        req = {"userName": target}
        if name == "AttachUserPolicy":
            req["policyArn"] = "arn:aws:iam::aws:policy/" + rng.choice(["AdministratorAccess", "ReadOnlyAccess"])
        resp = None
        if name == "CreateUser":
            resp = {"user": {"path": "/", "userName": target, "userId": "AIDA" + _hexid(target, account + "x"),
                             "arn": f"arn:aws:iam::{account}:user/{target}", "createDate": "Nov 1, 2026 10:00:00 AM"}}
        return req, resp
    if service == "s3":
        bucket = rng.choice(["prod-data", "logs-archive", "backups", "web-assets"]) + f"-{account[-4:]}"
        key = f"{rng.choice(['2026/11', 'exports', 'tmp', 'users'])}/{uuid.UUID(int=rng.getrandbits(128))}.parquet"
        return ({"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", "key": key,
                 "x-amz-server-side-encryption": "aws:kms"}, None)
    if service == "kms":
        return ({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {
            "aws:s3:arn": f"arn:aws:s3:::prod-data-{account[-4:]}/exports/{rng.randrange(10**6)}"},
            "keyId": f"arn:aws:kms:{region}:{account}:key/{uuid.UUID(int=rng.getrandbits(128))}"}, None)
    if service == "sts" and name == "AssumeRole":
        role = rng.choice(ROLES)
        return ({"roleArn": f"arn:aws:iam::{account}:role/{role}", "roleSessionName": f"session-{rng.randrange(10**5)}",
                 "durationSeconds": 3600},
                {"credentials": {"accessKeyId": "ASIA" + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=16)),
                                 "sessionToken": "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789+/", k=96)),
                                 "expiration": "Nov 1, 2026, 11:00:00 AM"},
                 "assumedRoleUser": {"assumedRoleId": f"AROA{_hexid(role, account)}:session",
                                     "arn": f"arn:aws:sts::{account}:assumed-role/{role}/session"}})
    if name.startswith(("Describe", "List", "Get", "Lookup")):
        return ({"maxResults": rng.choice([50, 100, 1000]), "filterSet": {"items": [
            {"name": "tag:team", "valueSet": {"items": [{"value": "platform"}]}}]}} if service == "ec2" else
                {"maxItems": 100}), None
    return ({"resourceName": f"{service}-{rng.randrange(1000)}", "tags": [{"key": "env", "value": "prod"}],
             "description": "managed by automation " * rng.randint(1, 4)}, None)


def _event(w: _World, t: dt.datetime, account: str, region: str, api: tuple) -> dict:
    rng = w.rng
    service, name, read_only, _ = api
    actor = w.actor(account, t)
    ip, ua = w.source(actor)
    ev: dict = {"eventVersion": "1.09", "userIdentity": actor, "eventTime": _iso(t),
                "eventSource": f"{service}.amazonaws.com", "eventName": name, "awsRegion": region,
                "sourceIPAddress": ip, "userAgent": ua}
    req, resp = _payload(w, service, name, account, region)
    # EC2 echoes the call's request id in its response, as real events do
    request_id = resp.get("requestId") if isinstance(resp, dict) else None
    if rng.random() < 0.05 and actor["type"] != "AWSService":
        if service == "ec2" and name in EC2_DENIABLE:
            ev["errorCode"] = "Client.UnauthorizedOperation"
            ev["errorMessage"] = ("You are not authorized to perform this operation. Encoded authorization failure "
                                  "message: " + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=120)))
        else:
            ev["errorCode"] = rng.choices(["AccessDenied", "AccessDeniedException", "ThrottlingException",
                                           "NoSuchEntity", "ValidationException"], [50, 20, 10, 10, 10])[0]
            ev["errorMessage"] = (f"User: {actor.get('arn', 'unknown')} is not authorized to perform: "
                                  f"{service}:{name} on resource: arn:aws:{service}:{region}:{account}:*")
        resp = None
    ev["requestParameters"] = req
    ev["responseElements"] = resp
    ev.update({"requestID": request_id or str(uuid.UUID(int=rng.getrandbits(128))), "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
               "readOnly": read_only, "eventType": "AwsApiCall", "managementEvent": service not in ("s3", "lambda")
               or name in ("ListBuckets", "CreateBucket", "PutBucketPolicy", "GetBucketPolicy"),
               "recipientAccountId": account, "eventCategory": "Management"})
    if service == "dynamodb":
        ev["apiVersion"] = "2012-08-10"
    if name == "AssumeRole" and rng.random() < 0.3:  # a cross-account call: both accounts get a copy
        ev["sharedEventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
    if service == "s3" and req and rng.random() < 0.15:  # through a VPC endpoint, possibly another account's
        ev["vpcEndpointId"] = f"vpce-{rng.randrange(16**8):08x}"
        ev["vpcEndpointAccountId"] = account if rng.random() < 0.7 else w.accounts[-1]
    if service == "s3" and req and rng.random() < 0.01:  # an S3-compatible call from a Snow/Outposts device
        ev["edgeDeviceDetails"] = {"type": "storage-device", "deviceID": f"JID-{rng.randrange(10**8)}",
                                   "snowJobId": str(uuid.UUID(int=rng.getrandbits(128)))}
    if rng.random() < 0.005:  # CloudTrail re-sends an event it had to correct or delay
        ev["addendum"] = {"reason": rng.choice(["DELIVERY_DELAY", "UPDATED_DATA", "SERVICE_OUTAGE"]),
                          "updatedFields": "userIdentity,requestParameters", "originalRequestID": ev["requestID"],
                          "originalEventID": ev["eventID"]}
    if service == "s3" and req:
        ev["resources"] = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{req['bucketName']}/{req['key']}"},
                           {"accountId": account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{req['bucketName']}"}]
        ev["additionalEventData"] = {"SignatureVersion": "SigV4", "CipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
                                     "bytesTransferredIn": 0, "AuthenticationMethod": "AuthHeader",
                                     "x-amz-id-2": "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789+/=", k=76)),
                                     "bytesTransferredOut": rng.randrange(10**7)}
    if ip not in ("AWS Internal",) and not ip.endswith("amazonaws.com"):
        tls13 = rng.random() < 0.5
        ev["tlsDetails"] = {"tlsVersion": "TLSv1.3" if tls13 else "TLSv1.2",
                            "cipherSuite": "TLS_AES_128_GCM_SHA256" if tls13 else "ECDHE-RSA-AES128-GCM-SHA256",
                            "clientProvidedHostHeader": f"{service}.{region}.amazonaws.com"}
        if tls13:
            ev["tlsDetails"]["keyExchange"] = rng.choice(["x25519", "secp256r1", "X25519MLKEM768"])
        ev["sessionCredentialFromConsole"] = "true" if ua in CONSOLE_UA else None
        if ev["sessionCredentialFromConsole"] is None:
            del ev["sessionCredentialFromConsole"]
    return ev


def _console_login(w: _World, t: dt.datetime, account: str, user: str, ok: bool, ip: str | None = None) -> dict:
    rng = w.rng
    ev = {"eventVersion": "1.09",
          "userIdentity": {"type": "IAMUser", "principalId": "AIDA" + _hexid(user, account),
                           "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account, "userName": user},
          "eventTime": _iso(t), "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
          "awsRegion": "us-east-1", "sourceIPAddress": ip or rng.choice(w.ipv4), "userAgent": rng.choice(CONSOLE_UA),
          "requestParameters": None, "responseElements": {"ConsoleLogin": "Success" if ok else "Failure"},
          "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23",
                                  "MobileVersion": "No", "MFAUsed": rng.choice(["Yes", "No"])},
          "eventID": str(uuid.UUID(int=rng.getrandbits(128))), "readOnly": False, "eventType": "AwsConsoleSignIn",
          "managementEvent": True, "recipientAccountId": account, "eventCategory": "Management",
          "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                         "clientProvidedHostHeader": "signin.aws.amazon.com"}}
    if not ok:
        ev["errorMessage"] = "Failed authentication"
    return ev


_DIURNAL = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 10, 9, 7, 5, 3, 2, 2, 1, 1]


def _service_event(w: _World, t: dt.datetime, account: str, region: str) -> dict:
    """An event AWS itself emits (eventType AwsServiceEvent), here a scheduled KMS key rotation."""
    rng = w.rng
    key = f"arn:aws:kms:{region}:{account}:key/{uuid.UUID(int=rng.getrandbits(128))}"
    return {"eventVersion": "1.09", "userIdentity": {"accountId": account, "invokedBy": "kms.amazonaws.com"},
            "eventTime": _iso(t), "eventSource": "kms.amazonaws.com", "eventName": "RotateKey", "awsRegion": region,
            "sourceIPAddress": "kms.amazonaws.com", "userAgent": "kms.amazonaws.com", "requestParameters": None,
            "responseElements": None, "eventID": str(uuid.UUID(int=rng.getrandbits(128))), "readOnly": False,
            "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key}],
            "eventType": "AwsServiceEvent", "managementEvent": True, "recipientAccountId": account,
            "serviceEventDetails": {"keyId": key.rsplit("/", 1)[1], "rotationType": "AUTOMATIC"},
            "eventCategory": "Management"}


def _insights(w: _World, account: str, region: str, day: dt.date) -> list[dict]:
    """A CloudTrail Insights start/end pair: an unusual burst of one API's calls in one account and region."""
    rng = w.rng
    start = dt.datetime.combine(day, dt.time(rng.randrange(8, 18)), dt.timezone.utc)
    shared = str(uuid.UUID(int=rng.getrandbits(128)))
    source, name = rng.choice([("ec2.amazonaws.com", "RunInstances"), ("sts.amazonaws.com", "AssumeRole"),
                               ("s3.amazonaws.com", "GetObject"), ("s3.amazonaws.com", "DeleteObject")])
    out = []
    for state, t in (("Start", start), ("End", start + dt.timedelta(minutes=rng.randrange(5, 60)))):
        out.append({"eventVersion": "1.08", "eventTime": _iso(t), "awsRegion": region,
                    "eventID": str(uuid.UUID(int=rng.getrandbits(128))), "eventType": "AwsCloudTrailInsight",
                    "recipientAccountId": account, "sharedEventID": shared, "eventCategory": "Insight",
                    "insightDetails": {"state": state, "eventSource": source, "eventName": name,
                                       "insightType": "ApiCallRateInsight", "insightContext": {"statistics": {
                                           "baseline": {"average": round(rng.uniform(0.01, 1), 4)},
                                           "insight": {"average": round(rng.uniform(5, 50), 4)}}}}})
    return out


def _day_events(spec: Spec, w: _World, day: int, hours: dict, streams: list) -> list[tuple]:
    """One day of activity, in time order; the brute-force burst happens half-way through the trail."""
    rng = w.rng
    start = dt.datetime.combine(spec.start, dt.time(), dt.timezone.utc) + dt.timedelta(days=day)
    weights = [a[3] for a in APIS]
    burst = min(12, spec.events // 50)  # a brute-force burst on the console, if there is room for it
    burst_at = dt.datetime.combine(spec.start, dt.time(), dt.timezone.utc) + dt.timedelta(seconds=spec.days * 43200)
    burst_here = burst and (burst_at - start).days == 0
    count = spec.events // spec.days + (1 if day < spec.events % spec.days else 0) - (burst if burst_here else 0)
    out = []
    for _ in range(count):
        account, region = rng.choice(streams)
        hour = rng.choices(range(24), hours[(account, region)])[0]
        t = start + dt.timedelta(hours=hour, seconds=rng.randrange(3600))
        api = rng.choices(APIS, weights)[0]
        if rng.random() < 0.003:
            ev = _service_event(w, t, account, region)
        elif api[1] == "ConsoleLogin":
            ev = _console_login(w, t, account, rng.choice(USERS), rng.random() > 0.2)
            region = ev["awsRegion"] if ev["awsRegion"] in w.regions else region
            ev["awsRegion"] = region
        else:
            ev = _event(w, t, account, region, api)
        out.append((t, account, region, ev))
    if burst_here:
        account = w.accounts[0]
        for i in range(burst):
            t = burst_at + dt.timedelta(seconds=20 * i)
            ev = _console_login(w, t, account, "mallory", ok=i == burst - 1, ip=w.attacker_ip)
            ev["awsRegion"] = w.regions[0]
            out.append((t, account, w.regions[0], ev))
    out.sort(key=lambda e: (e[0], e[3]["eventID"]))
    return out


_encoder = msgspec.json.Encoder()


def generate(spec: Spec, out_dir: str) -> dict:
    """Write the bucket; returns counts. Same spec → byte-identical files.

    Generated one day at a time: a delivery window that opens before the next midnight cannot receive
    later events, so it is written out and memory holds about one day of events, whatever the size.
    """
    w = _World(spec)
    rng = w.rng
    root = Path(out_dir)
    minutes = _window_minutes(spec, len(w.accounts) * len(w.regions))
    stream_keys = [(a, r) for a in w.accounts for r in w.regions]
    # busy and quiet hours differ per account and region, as in real trails: files of a few to thousands of events
    hours = {s: [d * rng.lognormvariate(0, 1) for d in _DIURNAL] for s in stream_keys}
    pending: dict[tuple[str, str, dt.datetime], list[dict]] = {}
    files = digests = size = n_events = 0
    logs_by_day: dict[tuple[str, str, dt.date], list[dict]] = {}
    for day in range(spec.days):
        for t, account, region, ev in _day_events(spec, w, day, hours, stream_keys):
            delivered = t + dt.timedelta(seconds=rng.randrange(120, 900))
            since_midnight = delivered.hour * 60 + delivered.minute
            window = delivered.replace(hour=0, minute=0, second=0) + dt.timedelta(
                minutes=since_midnight // minutes * minutes)
            pending.setdefault((account, region, window), []).append(ev)
        last = day == spec.days - 1
        midnight = dt.datetime.combine(spec.start + dt.timedelta(days=day + 1), dt.time(), dt.timezone.utc)
        keys = sorted(k for k in pending if last or k[2] < midnight)
        # CloudTrail delivers some events twice, in a later file of the same stream
        for i, key in enumerate(keys):
            for ev in pending[key]:
                if rng.random() < 0.003 and i + 1 < len(keys) and keys[i + 1][:2] == key[:2]:
                    pending[keys[i + 1]].append(ev)
        for account, region, window in keys:
            records = pending.pop((account, region, window))
            name = f"{account}_CloudTrail_{region}_{window:%Y%m%dT%H%MZ}_{_rand16(rng)}.json.gz"
            rel = f"AWSLogs/{account}/CloudTrail/{region}/{window:%Y/%m/%d}/{name}"
            body = _encoder.encode({"Records": records})
            size += _put(root / rel, body)
            files += 1
            n_events += len(records)
            times = [r["eventTime"] for r in records]
            logs_by_day.setdefault((account, region, window.date()), []).append({
                "s3Bucket": "trailhouse-demo-trail", "s3Object": rel, "hashValue": hashlib.sha256(body).hexdigest(),
                "hashAlgorithm": "SHA-256", "newestEventTime": max(times), "oldestEventTime": min(times)})
    insights = 0
    for account, region, day in sorted(logs_by_day):
        if day >= spec.start + dt.timedelta(days=spec.days):
            continue  # only deliveries spilling past the last day: no activity of its own
        records = _insights(w, account, region, day)
        name = f"{account}_CloudTrail-Insight_{region}_{day:%Y%m%d}T2359Z_{_rand16(rng)}.json.gz"
        size += _put(root / f"AWSLogs/{account}/CloudTrail-Insight/{region}/{day:%Y/%m/%d}/{name}",
                     _encoder.encode({"Records": records}))
        insights += len(records)
    previous: dict[tuple[str, str], tuple[str, bytes]] = {}  # the chain: each digest names the one before it
    for (account, region, day), logs in sorted(logs_by_day.items()):
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        name = f"{account}_CloudTrail-Digest_{region}_trailhouse-demo_{region}_{end:%Y%m%dT%H%M%SZ}.json.gz"
        rel = f"AWSLogs/{account}/CloudTrail-Digest/{region}/{day:%Y/%m/%d}/{name}"
        digest = {"awsAccountId": account, "digestStartTime": _iso(end - dt.timedelta(days=1)), "digestEndTime": _iso(end),
                  "digestS3Bucket": "trailhouse-demo-trail", "digestS3Object": rel,
                  "digestPublicKeyFingerprint": hashlib.md5(account.encode()).hexdigest(),
                  "digestSignatureAlgorithm": "SHA256withRSA",
                  "newestEventTime": max(x["newestEventTime"] for x in logs),
                  "oldestEventTime": min(x["oldestEventTime"] for x in logs),
                  "previousDigestS3Bucket": None, "previousDigestS3Object": None, "previousDigestHashValue": None,
                  "previousDigestHashAlgorithm": "SHA-256", "previousDigestSignature": None, "logFiles": logs}
        if (account, region) in previous:
            prev_key, prev_body = previous[(account, region)]
            digest.update({"previousDigestS3Bucket": "trailhouse-demo-trail", "previousDigestS3Object": prev_key,
                           "previousDigestHashValue": hashlib.sha256(prev_body).hexdigest(),
                           "previousDigestSignature": hashlib.sha512(prev_body).hexdigest() * 4})
        body = _encoder.encode(digest)
        previous[(account, region)] = (rel, body)
        size += _put(root / rel, body)
        digests += 1
    return {"events": n_events + insights, "files": files, "digests": digests, "insights": insights, "bytes": size}


def _put(path: Path, body: bytes) -> int:
    """Write one delivered file, gzipped as CloudTrail does (no timestamp in the header: same seed, same bytes)."""
    data = igzip.compress(body, 3, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def _window_minutes(spec: Spec, streams: int) -> int:
    """CloudTrail delivers every ~5 minutes; a sparse synthetic trail uses wider windows to avoid tiny files."""
    windows_per_day = max(1, spec.events // (streams * spec.days * 40))
    return max(5, min(360, (1440 // windows_per_day) // 5 * 5))


def _rand16(rng: random.Random) -> str:
    return "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", k=16))
