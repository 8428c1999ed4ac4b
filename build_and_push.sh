#!/usr/bin/env bash
# Build the sagebert image, push it to Amazon ECR, and print its URI and digest.
#
#   ./build_and_push.sh [OPTIONS] [REPOSITORY] [TAG]
#
#   REPOSITORY  ECR repository (default: sagebert); created when missing
#   TAG         image tag (default: the git revision, 12 hex digits, with "-dirty" appended when
#               tracked files have uncommitted changes)
#
# Options:
#   --latest              also push the tag "latest" (not with an IMMUTABLE repository)
#   --immutable           create the repository with tag immutability (IMMUTABLE)
#   --scan-on-push        create the repository with scan-on-push
#   --source-image IMAGE  push this local image instead of building one (e.g. sagebert:dev)
#   --dry-run             print the plan and change nothing: stdout has one JSON line per step
#                         ({"operation": ..., "request": {...}}: CreateRepository when missing, the
#                         docker build, each docker push); only STS and DescribeRepositories are sent
#   -h, --help            show this text
#
# Environment:
#   VARIANT=cpu|gpu, BASE_IMAGE, WHEELHOUSE, DOCKER_BUILD_ARGS   passed to container/build-image.sh
#   AWS_PROFILE           the account (from STS) and, without the two below, the profile's region
#   AWS_REGION, AWS_DEFAULT_REGION   the region, AWS_REGION first (boto3 alone reads only the second)
#   AWS_ENDPOINT_URL      send every AWS call there instead (e.g. a local stand-in)
#   REGISTRY              push to this registry host instead of <account>.dkr.ecr.<region>.amazonaws.com
#   PYTHON                a Python with boto3 (default: python3; `pip install boto3` or the sagebert venv)
#   DOCKER                the docker CLI (default: docker)
#
# stdout carries exactly three lines, for machines (e.g. `./build_and_push.sh >> "$GITHUB_OUTPUT"`):
#   image_uri=REGISTRY/REPOSITORY:TAG
#   image_digest=sha256:...
#   image_digest_uri=REGISTRY/REPOSITORY@sha256:...
# Progress and errors go to stderr. The registry password goes from ECR's GetAuthorizationToken
# through a pipe into `docker login --password-stdin`; docker keeps it in a private, temporary
# DOCKER_CONFIG (mode 700) that is deleted on exit, never in ~/.docker.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
DOCKER="${DOCKER:-docker}"

say() { printf '%s\n' "$*" >&2; }
die() { printf 'build_and_push.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; }

latest=false mutability=MUTABLE scan=false source_image="" dry_run=false positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --latest) latest=true ;;
    --immutable) mutability=IMMUTABLE ;;
    --scan-on-push) scan=true ;;
    --dry-run) dry_run=true ;;
    --source-image) [ $# -ge 2 ] || die "--source-image needs an image name"; source_image="$2"; shift ;;
    --source-image=*) source_image="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    -*) usage; die "unknown option $1" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[ ${#positional[@]} -le 2 ] || die "too many arguments: ${positional[*]} (expected [REPOSITORY] [TAG])"
repository="${positional[0]:-sagebert}"
tag="${positional[1]:-}"

if ! [[ "$repository" =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]] ||
   [ ${#repository} -lt 2 ] || [ ${#repository} -gt 256 ]; then
  die "'$repository' is not a valid ECR repository name: use 2-256 lower-case letters, digits and . _ - / (e.g. sagebert)"
fi

# ---- the tag: the git revision -----------------------------------------------------------------
if [ -z "$tag" ]; then
  revision="$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null)" ||
    die "$here is not a git checkout with a commit, so there is no revision to tag with: pass a TAG (./build_and_push.sh $repository v1)"
  tag="$revision"
  if [ -n "$(git -C "$here" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    tag="$revision-dirty"
    say "warning: uncommitted changes in $here: the image is tagged $tag and matches no commit; commit first for a reproducible image"
  fi
fi
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
  die "'$tag' is not a valid image tag: use up to 128 letters, digits, _ . - (not starting with . or -)"
if $latest && [ "$mutability" = IMMUTABLE ]; then
  die "--latest cannot be used with --immutable: an immutable repository never moves a tag once pushed"
fi

# ---- tools ---------------------------------------------------------------------------------------
"$PYTHON" -c 'import boto3' 2>/dev/null ||
  die "boto3 is not importable by $PYTHON: pip install boto3 (or activate the venv where sagebert is installed), or set PYTHON=/path/to/python"
command -v "$DOCKER" >/dev/null 2>&1 ||
  die "docker not found ($DOCKER): install Docker (https://docs.docker.com/engine/install/) or set DOCKER=..."
"$DOCKER" info >/dev/null 2>&1 ||
  die "the Docker engine does not answer: start it (dockerd / Docker Desktop) and check you may use it (docker info)"

# ---- AWS: account, region, repository, password (boto3; AWS_ENDPOINT_URL is honoured) -----------
# The program reads its instructions from argv; the password is the only thing it ever writes to
# stdout for "password", and that stdout is a pipe into docker login.
read -r -d '' AWS_HELPER <<'PY' || true
import base64, os, sys
import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

def fail(message):
    sys.stderr.write(f"build_and_push.sh: error: {message}\n")
    sys.exit(1)

# AWS_REGION first: boto3 itself reads only AWS_DEFAULT_REGION (then the profile).
session = boto3.session.Session(region_name=os.environ.get("AWS_REGION", "").strip() or None)
try:
    if sys.argv[1] == "setup":
        repository, mutability, scan, dry_run = sys.argv[2:6]
        if not session.region_name:
            fail("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or `aws configure set region eu-west-1`")
        account = session.client("sts").get_caller_identity()["Account"]
        ecr = session.client("ecr")
        created = 0
        try:
            found = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "RepositoryNotFoundException":
                raise
            if dry_run == "true":  # what CreateRepository would answer; created=2: planned, not made
                host = f"{account}.dkr.ecr.{session.region_name}.amazonaws.com"
                print(account, session.region_name, host, mutability, scan, 2)
                sys.exit(0)
            found = ecr.create_repository(repositoryName=repository, imageTagMutability=mutability,
                                          imageScanningConfiguration={"scanOnPush": scan == "true"})["repository"]
            created = 1
        print(account, session.region_name, found["repositoryUri"].split("/", 1)[0], found["imageTagMutability"],
              str(found.get("imageScanningConfiguration", {}).get("scanOnPush", False)).lower(), created)
    elif sys.argv[1] == "password":
        data = session.client("ecr").get_authorization_token()["authorizationData"][0]
        sys.stdout.write(base64.b64decode(data["authorizationToken"]).decode().partition(":")[2])
except (NoCredentialsError, PartialCredentialsError):
    fail("no AWS credentials: run `aws configure`, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and "
         "AWS_SECRET_ACCESS_KEY (in CI: assume a role by OIDC)")
except ClientError as exc:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", "")
    if "AccessDenied" in code or "not authorized" in message:
        fail(f"AWS denied {exc.operation_name}: {message} (the caller needs ecr:{exc.operation_name}; see docs/aws.md)")
    if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
        fail(f"AWS rejected the credentials ({code}): refresh them (aws sso login, a new session token) or check AWS_PROFILE")
    fail(f"{exc.operation_name} failed ({code}): {message}")
except BotoCoreError as exc:
    fail(f"AWS call failed: {exc}")
PY

setup="$("$PYTHON" -c "$AWS_HELPER" setup "$repository" "$mutability" "$scan" "$dry_run")" || exit 1
read -r account region ecr_registry repo_mutability repo_scan created <<<"$setup"
registry="${REGISTRY:-$ecr_registry}"
if [ "$created" = 2 ]; then
  say "ECR repository $repository does not exist in $account/$region: the plan creates it"
elif [ "$created" = 1 ]; then
  say "created ECR repository $repository in $account/$region ($repo_mutability, scan on push: $repo_scan)"
else
  say "ECR repository $repository exists in $account/$region ($repo_mutability, scan on push: $repo_scan)"
  if [ "$mutability" = IMMUTABLE ] && [ "$repo_mutability" != IMMUTABLE ]; then
    say "warning: --immutable only applies when creating the repository; to change it: aws ecr put-image-tag-mutability --repository-name $repository --image-tag-mutability IMMUTABLE"
  fi
  if [ "$scan" = true ] && [ "$repo_scan" != true ]; then
    say "warning: --scan-on-push only applies when creating the repository; to change it: aws ecr put-image-scanning-configuration --repository-name $repository --image-scanning-configuration scanOnPush=true"
  fi
fi
if $latest && [ "$repo_mutability" = IMMUTABLE ]; then
  die "--latest cannot be pushed: repository $repository is IMMUTABLE, so 'latest' could never move again"
fi

# ---- build (or take a local image) ------------------------------------------------------------------
image="$registry/$repository"
if $dry_run; then  # names and values are checked above against ECR's patterns: no JSON escaping needed
  [ "$created" = 2 ] && printf '{"operation": "CreateRepository", "request": {"repositoryName": "%s", "imageTagMutability": "%s", "imageScanningConfiguration": {"scanOnPush": %s}}}\n' \
    "$repository" "$mutability" "$scan"
  if [ -n "$source_image" ]; then
    "$DOCKER" image inspect "$source_image" >/dev/null 2>&1 || die "no local image $source_image to push"
  else
    printf '{"operation": "docker build", "request": {"image": "%s", "VARIANT": "%s", "BASE_IMAGE": "%s"}}\n' \
      "$repository:$tag" "${VARIANT:-cpu}" "${BASE_IMAGE:-}"
  fi
  printf '{"operation": "docker push", "request": {"image": "%s", "from": "%s"}}\n' "$image:$tag" "${source_image:-$repository:$tag}"
  $latest && printf '{"operation": "docker push", "request": {"image": "%s", "from": "%s"}}\n' "$image:latest" "${source_image:-$repository:$tag}"
  say "dry run: nothing was created, built or pushed"
  exit 0
fi
if [ -n "$source_image" ]; then
  "$DOCKER" image inspect "$source_image" >/dev/null 2>&1 ||
    die "no local image $source_image: build it (container/build-image.sh $source_image) or drop --source-image"
  local_image="$source_image"
  say "pushing the local image $local_image (no build)"
else
  local_image="$repository:$tag"
  say "building $local_image (VARIANT=${VARIANT:-cpu}${BASE_IMAGE:+, BASE_IMAGE=$BASE_IMAGE})"
  "$here/container/build-image.sh" "$local_image" >&2 ||
    die "the build failed (see above); nothing was pushed"
fi

# ---- log in with a private docker config, then push --------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/build-and-push.XXXXXX")"
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT
set +e
"$PYTHON" -c "$AWS_HELPER" password |
  DOCKER_CONFIG="$work" "$DOCKER" login --username AWS --password-stdin "$registry" >"$work/login.log" 2>&1
status=("${PIPESTATUS[@]}")
set -e
[ "${status[0]}" = 0 ] || exit 1
[ "${status[1]}" = 0 ] ||
  die "docker login to $registry was refused: $(grep -v '^WARNING' "$work/login.log" | tail -1). Check the region and that the caller may call ecr:GetAuthorizationToken"

push() {  # push $1, showing docker's progress; remember its output for the digest or the diagnosis
  set +e
  DOCKER_CONFIG="$work" "$DOCKER" push "$1" 2>&1 | tee "$work/push.log" >&2
  local code="${PIPESTATUS[0]}"
  set -e
  [ "$code" = 0 ] && return 0
  local last
  last="$(grep -v '^\s*$' "$work/push.log" | tail -1)"
  if grep -qiE 'tag invalid|already exists|immutable' "$work/push.log"; then
    die "push refused: $1 already exists and repository $repository is immutable ($last). Commit your change for a new revision tag, or pass another TAG"
  elif grep -qiE 'denied|unauthorized|forbidden|no basic auth' "$work/push.log"; then
    die "push refused by $registry: $last. The caller needs ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload and ecr:PutImage on $repository (docs/aws.md)"
  fi
  die "push refused by $registry: $last"
}

"$DOCKER" tag "$local_image" "$image:$tag"
push "$image:$tag"
digest="$(grep -oE 'digest: sha256:[0-9a-f]{64}' "$work/push.log" | tail -1 | cut -d' ' -f2)"
[ -n "$digest" ] || die "pushed $image:$tag but docker reported no digest (see above)"
if $latest; then
  "$DOCKER" tag "$local_image" "$image:latest"
  push "$image:latest"
fi

also=""
if $latest; then also=" and $image:latest"; fi
say "pushed $image:$tag$also"
say "digest $digest"
printf 'image_uri=%s\nimage_digest=%s\nimage_digest_uri=%s\n' "$image:$tag" "$digest" "$image@$digest"
