"""Sets up IAM on a moto server for credential tests, before it starts enforcing auth.

Creates a bucket, a user with an access key allowed to use S3 and STS, and a role that user
may assume. Prints one JSON line: {"access_key", "secret_key", "role_arn"}.
Usage: moto_iam_setup.py ENDPOINT BUCKET
"""
import json
import sys

import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="setup", aws_secret_access_key="setup")
s3 = boto3.client("s3", **kw)
iam = boto3.client("iam", **kw)

allow_all = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"], "Resource": "*"}]})
trust = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})

s3.create_bucket(Bucket=bucket)                                               # 1
iam.create_user(UserName="offloader")                                         # 2
iam.put_user_policy(UserName="offloader", PolicyName="all", PolicyDocument=allow_all)  # 3
key = iam.create_access_key(UserName="offloader")["AccessKey"]                # 4
role = iam.create_role(RoleName="offload-role", AssumeRolePolicyDocument=trust)["Role"]  # 5
iam.put_role_policy(RoleName="offload-role", PolicyName="all", PolicyDocument=allow_all)  # 6
print(json.dumps({"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"],
                  "role_arn": role["Arn"]}))
