/**
 * systemd's unit name grammar (src/basic/unit-name.c, unit_name_is_valid): at most 255 bytes,
 * characters [A-Za-z0-9:_.\-] plus one '@' for templates/instances (the `\` of escaped instance
 * names too), a non-empty prefix, and one of the known type suffixes; like systemctl, a name
 * without a suffix means ".service" (install/unit.ts fullUnitName).
 */
const UNIT_SUFFIXES = [
  "service",
  "socket",
  "device",
  "mount",
  "automount",
  "swap",
  "target",
  "path",
  "timer",
  "slice",
  "scope",
];
const UNIT_NAME = new RegExp(
  String.raw`^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?(\.(${UNIT_SUFFIXES.join("|")}))?$`,
);

export const UNIT_NAME_RULE =
  "expected a systemd unit name like ollama.service ([A-Za-z0-9:_.\\-@], at most 255 characters; no suffix means .service)";

export function isUnitName(name: string): boolean {
  return name.length <= 255 && UNIT_NAME.test(name);
}
