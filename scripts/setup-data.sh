#!/usr/bin/env bash
# Install the data sets that Debian packages carry: Fashion-MNIST, the Noto Color Emoji font
# and Unicode's emoji list, plus Chromium, which the tests use to render `i2i-unlearn report` pages.
# Skips what is already there; needs root (or sudo) for apt-get.
set -euo pipefail
need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
[ -f /usr/share/unicode/emoji/emoji-test.txt ] || need+=(unicode-data)
command -v chromium > /dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get > /dev/null; then
    echo "missing Debian packages: ${need[*]}; install them (chromium only serves the report test), or set I2I_UNLEARN_FASHION_MNIST=DIR for the data" >&2
    exit 1
fi
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
echo "installing ${need[*]} with apt-get"
$sudo_cmd apt-get update -q > /dev/null
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${need[@]}" > /dev/null
