# shellcheck shell=bash
# Sourced by scripts/setup-build-deps and scripts/setup-deps: installs
# Debian packages with apt, saying what first, on any Debian release whose
# apt sources have them.  Each package may be a list of alternatives,
# "a|b": the first one this system's apt knows is taken (e.g.
# libclang-rt-dev on trixie and sid, libclang-rt-14-dev on bookworm).
# Needs the caller to set WHO (the script's name, for messages).  APT_ETC
# (default /etc/apt) is for the tests of add_deb_src.

apt_etc=${APT_ETC:-/etc/apt}

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

have_deb_src() {
  grep -rqsE '^(deb-src[[:space:]]|Types:.*deb-src)' "$apt_etc/sources.list" "$apt_etc/sources.list.d/"
}

# Mirrors every binary entry of the system as a source entry, whatever its
# host (Debian, Ubuntu, a local mirror), in one file of our own.
add_deb_src() {
  local out=$apt_etc/sources.list.d/mod_uploadprogress-src list
  local f
  for f in "$apt_etc"/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    # deb822: each paragraph whose Types has deb, as a deb-src paragraph
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         match($0, /(^|\n)Types:[^\n]*/) {
           if (substr($0, RSTART, RLENGTH) ~ /[: \t]deb([ \t]|$)/) {
             sub(/Types:[^\n]*/, "Types: deb-src"); print } }' "$f"
  done | $SUDO tee "$out.sources" >/dev/null
  list=$(sed -n 's/^deb\([[:space:]]\)/deb-src\1/p' \
           "$apt_etc/sources.list" "$apt_etc"/sources.list.d/*.list 2>/dev/null || true)
  if [ -n "$list" ]; then echo "$list" | $SUDO tee "$out.list" >/dev/null; fi
}

installed() {   # installed PKG
  dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed'
}

missing_packages() {   # missing_packages SPEC...: the specs none of whose alternatives is installed
  local spec alt ok
  for spec in "$@"; do
    ok=
    for alt in ${spec//|/ }; do installed "$alt" && ok=1 && break; done
    [ -n "$ok" ] || echo "$spec"
  done
}

known_to_apt() {   # known_to_apt PKG: whether apt has a candidate for it
  [ -n "$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^  Candidate: //p' | grep -v '(none)')" ]
}

# install_packages SPEC...: installs what is missing, after saying what;
# stops with one line naming what this system's apt sources lack.
install_packages() {
  local missing need=() spec alt pick
  missing=$(missing_packages "$@")
  if ! have_deb_src; then
    echo "$WHO: adding deb-src entries mirroring the system's apt sources" \
         "($apt_etc/sources.list.d/mod_uploadprogress-src.*)" >&2
    add_deb_src
    missing+=" "   # apt-get update, for the new entries
  fi
  [ -n "$missing" ] || return 0
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  for spec in $missing; do
    pick=
    for alt in ${spec//|/ }; do known_to_apt "$alt" && pick=$alt && break; done
    if [ -z "$pick" ]; then
      echo "$WHO: this system's apt sources have no package ${spec//|/ or } (known to work: Debian bookworm, trixie, sid)" >&2
      return 1
    fi
    need+=("$pick")
  done
  [ ${#need[@]} -gt 0 ] || return 0
  echo "$WHO: installing ${need[*]}" >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
