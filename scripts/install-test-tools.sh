#!/bin/sh
# Tools the test suite drives besides npm's: the AWS CLI from Debian's packages (`awscli`, built on
# botocore as boto3 is), for the DynamoDB face's tests. Run by `npm test` before the tests; where
# it cannot install (not root, no apt-get), those tests skip and say why, except in CI.
set -e
[ -x /usr/bin/aws ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "cairn: Debian's awscli is not installed and cannot be here (needs root and apt-get): the AWS CLI tests will skip" >&2
  exit 0
fi
echo "cairn: installing Debian's awscli for the DynamoDB tests" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends awscli >/dev/null
