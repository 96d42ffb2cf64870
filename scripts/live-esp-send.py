#!/usr/bin/python3
"""Send ESP (transport mode, IPv4/UDP inside) frames with Scapy, for the `ipsecov2 live` tests.

Run it inside a network namespace you created, e.g.:

  ip netns exec ipo2a-1234 /usr/bin/python3 scripts/live-esp-send.py --iface ipo2v0 \
      --src-mac 02:00:00:00:77:01 --dst-mac 02:00:00:00:77:02 --src 10.77.0.1 --dst 10.77.0.2 \
      --spi 0x2001 --alg gcm --key 0x00112233445566778899aabbccddeeff01020304 --count 3 --marker scapy-gcm

Each payload is "<marker>-<n>" (n from 1). --tamper-last flips one bit of the last frame's ICV,
so the receiver must report an ESP authentication failure for it. --pcap FILE writes the frames
too. Needs python3-scapy and python3-cryptography (Debian packages).
"""
import argparse
import sys

from scapy.all import Ether, IP, UDP, Raw, sendp, wrpcap  # noqa: E402
from scapy.layers.ipsec import ESP, SecurityAssociation  # noqa: E402


def hexbytes(s: str) -> bytes:
    s = s.replace(' ', '').replace(':', '')
    if s.startswith('0x'):
        s = s[2:]
    return bytes.fromhex(s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--iface', required=True)
    ap.add_argument('--src-mac', required=True)
    ap.add_argument('--dst-mac', required=True)
    ap.add_argument('--src', required=True)
    ap.add_argument('--dst', required=True)
    ap.add_argument('--spi', required=True, type=lambda v: int(v, 0))
    ap.add_argument('--alg', choices=['gcm', 'cbc-sha256'], required=True)
    ap.add_argument('--key', required=True, help='encryption key (gcm: key || 4-byte salt)')
    ap.add_argument('--auth-key', help='integrity key (cbc-sha256)')
    ap.add_argument('--count', type=int, default=3)
    ap.add_argument('--seq', type=int, default=1, help='first sequence number')
    ap.add_argument('--marker', default='scapy')
    ap.add_argument('--sport', type=int, default=40000)
    ap.add_argument('--dport', type=int, default=5001)
    ap.add_argument('--tamper-last', action='store_true')
    ap.add_argument('--pcap', help='also write the frames to this pcap file')
    ap.add_argument('--no-send', action='store_true', help='only write --pcap, send nothing')
    a = ap.parse_args()

    if a.alg == 'gcm':
        sa = SecurityAssociation(ESP, spi=a.spi, seq_num=a.seq, crypt_algo='AES-GCM', crypt_key=hexbytes(a.key))
    else:
        if not a.auth_key:
            ap.error('--auth-key is required for cbc-sha256')
        sa = SecurityAssociation(ESP, spi=a.spi, seq_num=a.seq, crypt_algo='AES-CBC', crypt_key=hexbytes(a.key),
                                 auth_algo='SHA2-256-128', auth_key=hexbytes(a.auth_key))
    frames = []
    for n in range(1, a.count + 1):
        inner = IP(src=a.src, dst=a.dst, id=n) / UDP(sport=a.sport, dport=a.dport) / Raw(f'{a.marker}-{n}'.encode())
        enc = sa.encrypt(inner)
        raw = bytearray(bytes(Ether(src=a.src_mac, dst=a.dst_mac) / enc))
        if a.tamper_last and n == a.count:
            raw[-1] ^= 0x01  # last byte of the ICV
        frames.append(Ether(bytes(raw)))
    if a.pcap:
        wrpcap(a.pcap, frames)
    if a.no_send:
        return 0
    sendp(frames, iface=a.iface, verbose=False)
    print(f'sent {len(frames)} ESP frames on {a.iface} (spi 0x{a.spi:08x}, {a.alg})', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
