#!/usr/bin/env bash
# Rebuilds the GOV.UK Frontend-based assets embedded by the web crate
# (crates/web/assets/). The outputs are committed, so `cargo run` needs no npm;
# run this only after changing usher.scss or the npm dependencies.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
out="../crates/web/assets"
mkdir -p "$out"

npm ci --no-audit --no-fund

npx --no-install sass \
  --style=compressed \
  --no-source-map \
  --load-path=node_modules \
  --quiet-deps \
  --silence-deprecation=import \
  usher.scss "$out/usher.css"

# The footer's `.govuk-footer__crown` rule only styles the crown logo, which
# Usher never renders; drop it so nothing crown-related is shipped.
sed -i -E 's/\.govuk-footer__crown\{[^}]*\}//g' "$out/usher.css"

cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js "$out/govuk-frontend.min.js"

# Images referenced by the CSS would be copied here. There are none: usher.scss
# drops GOV.UK's crest and fails the build on any other image or font url().

# Guard rails: no GOV.UK-only font, no crown, no url() at all.
for bad in 'GDS Transport' 'crown' 'crest' 'url('; do
  if grep -qiF -- "$bad" "$out/usher.css"; then
    echo "build.sh: '$bad' found in $out/usher.css" >&2
    exit 1
  fi
done

version="$(node -p 'require("govuk-frontend/package.json").version')"
echo "Built $out/usher.css and $out/govuk-frontend.min.js (govuk-frontend $version)"
