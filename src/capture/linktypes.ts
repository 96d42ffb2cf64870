/**
 * LINKTYPE_* values (the link-layer header type registry shared by pcap and pcapng,
 * draft-ietf-opsawg-pcaplinktype) for the link types this tool decodes, plus a few that
 * commonly appear beside them. Values are the on-disk LINKTYPE numbers, not DLT_* numbers.
 */

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_PPP = 9;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_IEEE802_11 = 105;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IEEE802_11_RADIOTAP = 127;
/** First of the 16 private-use link types; the reader gives it to frames whose interface is unknown. */
export const LINKTYPE_USER0 = 147;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_NETLINK = 253;
export const LINKTYPE_LINUX_SLL2 = 276;

const NAMES: ReadonlyMap<number, string> = new Map([
  [LINKTYPE_NULL, 'BSD loopback'],
  [LINKTYPE_ETHERNET, 'Ethernet'],
  [LINKTYPE_PPP, 'PPP'],
  [LINKTYPE_RAW, 'Raw IP'],
  [LINKTYPE_IEEE802_11, 'IEEE 802.11'],
  [LINKTYPE_LOOP, 'OpenBSD loopback'],
  [LINKTYPE_LINUX_SLL, 'Linux SLL'],
  [LINKTYPE_IEEE802_11_RADIOTAP, 'IEEE 802.11 radiotap'],
  [LINKTYPE_IPV4, 'Raw IPv4'],
  [LINKTYPE_IPV6, 'Raw IPv6'],
  [LINKTYPE_NETLINK, 'Linux netlink'],
  [LINKTYPE_LINUX_SLL2, 'Linux SLL2'],
]);

/**
 * Human name of a link type, for messages and summaries.
 * @param linkType LINKTYPE_* value.
 * @returns e.g. `"Ethernet"`, `"Raw IP"`, `"Linux SLL"`; `"USER0"`..`"USER15"` for the private
 *   range; `"link type N"` for anything else.
 * @example linkTypeName(276) // 'Linux SLL2'
 */
export function linkTypeName(linkType: number): string {
  const name = NAMES.get(linkType);
  if (name !== undefined) return name;
  if (linkType >= LINKTYPE_USER0 && linkType < LINKTYPE_USER0 + 16) {
    return `USER${linkType - LINKTYPE_USER0}`;
  }
  return `link type ${linkType}`;
}

/**
 * Whether the later layers can decode this link type (ipsecov2 passes frames of any other link
 * type through untouched, counting them).
 */
export function isDecodableLinkType(linkType: number): boolean {
  return (
    linkType === LINKTYPE_ETHERNET ||
    linkType === LINKTYPE_RAW ||
    linkType === LINKTYPE_IPV4 ||
    linkType === LINKTYPE_IPV6 ||
    linkType === LINKTYPE_LINUX_SLL ||
    linkType === LINKTYPE_LINUX_SLL2 ||
    linkType === LINKTYPE_NULL
  );
}
