#!/usr/bin/env bash
# Build the worker image for arm64 and amd64 and push it to ECR (needs Docker with buildx, and AWS credentials).
#   IMAGE_REPO=<account>.dkr.ecr.<region>.amazonaws.com/browserjobs-worker [IMAGE_TAG=...] \
#   [PLAYWRIGHT_DIGEST=sha256:...] container/build-and-push.sh
# Prints the pushed image URI (tag@digest): the WorkerImageUri parameter of `sam deploy`.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${IMAGE_REPO:?set IMAGE_REPO to the ECR repository URI}"
tag="${IMAGE_TAG:-$(git rev-parse --short=12 HEAD)}"
registry="${IMAGE_REPO%%/*}"
region="$(cut -d. -f4 <<<"$registry")"

mkdir -p out
aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
docker buildx build \
  --platform linux/arm64,linux/amd64 \
  --file container/Dockerfile \
  --build-arg "PLAYWRIGHT_DIGEST=${PLAYWRIGHT_DIGEST:-}" \
  --tag "$IMAGE_REPO:$tag" \
  --metadata-file out/worker-image.json \
  --push \
  .
digest="$(python3 -c 'import json; print(json.load(open("out/worker-image.json"))["containerimage.digest"])')"
echo "$IMAGE_REPO:$tag@$digest"
