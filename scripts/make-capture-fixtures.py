#!/usr/bin/python3
"""Make the capture-layer fixtures in fixtures/capture/ (re-runnable; output is committed).

Tools (none written here): Scapy (packet bytes, wrpcap/wrpcapng), Wireshark's text2pcap,
editcap and mergecap. Files that no tool can produce (big-endian pcap, multi-section pcapng
with SPB / obsolete PB / unknown blocks / binary if_tsresol) are written byte by byte with
Python's struct module below, following draft-ietf-opsawg-pcap and draft-ietf-opsawg-pcapng.
Every file is then read by tshark, and what tshark reports per frame (time, lengths, interface,
comment, MD5 of the bytes) is stored in manifest.json: the tests compare our reader with it.

Run with the Debian python (python3-scapy): /usr/bin/python3 scripts/make-capture-fixtures.py
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

os.environ['TZ'] = 'UTC'
import logging
logging.getLogger('scapy.runtime').setLevel(logging.ERROR)
from scapy.all import (AH, ESP, IP, UDP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether,  # noqa: E402
                       IPv6, Raw, wrpcap, wrpcapng)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
OUT = os.path.join(ROOT, 'fixtures', 'capture')
T0 = 1795255200  # 2026-11-21T10:00:00Z
MANIFEST = {}


def run(*args, **kw):
    subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def out(name):
    return os.path.join(OUT, name)


# --- packets (Scapy) -----------------------------------------------------------------------
A4, B4 = '192.0.2.1', '198.51.100.2'
A6, B6 = '2001:db8::1', '2001:db8::2'


def esp(spi, seq, n=24):
    return ESP(spi=spi, seq=seq, data=bytes((seq + i) & 0xff for i in range(n)))


ip4_esp = [IP(src=A4, dst=B4, id=i) / esp(0xc001, i) for i in range(1, 4)]
ip6_esp = [IPv6(src=A6, dst=B6) / esp(0xc002, i, 32) for i in range(1, 3)]
ip4_natt = IP(src=A4, dst=B4) / UDP(sport=4500, dport=4500) / esp(0xc003, 7)
ip4_ah = IP(src=A4, dst=B4) / AH(spi=0xa001, seq=1, icv=b'\x11' * 12, nh=4) / IP(src='10.1.0.1', dst='10.2.0.1') / Raw(b'ping')
ip4_plain = IP(src=A4, dst=B4) / UDP(sport=1234, dport=53) / Raw(b'hello')
MAC = dict(src='02:00:00:00:00:01', dst='02:00:00:00:00:02')
eth_frames = [Ether(**MAC) / p for p in ip4_esp + ip6_esp + [ip4_natt, ip4_ah, ip4_plain]]
raw4 = ip4_esp + [ip4_natt, ip4_plain]


def hexdump_text(frames, times):
    """od-style hex dump with a timestamp line before each packet, for text2pcap -t."""
    lines = []
    for f, t in zip(frames, times):
        b = bytes(f)
        lines.append(t)
        for o in range(0, len(b), 16):
            lines.append('%06x  ' % o + ' '.join('%02x' % x for x in b[o:o + 16]))
        lines.append('')
    return '\n'.join(lines) + '\n'


def text2pcap(name, frames, linktype, fmt):
    times = ['2026-11-21 10:00:%02d.%06d' % (i, 123456 + i * 1001) for i in range(len(frames))]
    # a fixed input name: text2pcap records it in the pcapng SHB comment
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, name + '.txt')
        with open(src, 'w') as f:
            f.write(hexdump_text(frames, times))
        run('text2pcap', '-q', '-F', fmt, '-l', str(linktype), '-t', '%Y-%m-%d %H:%M:%S.%f', name + '.txt', os.path.abspath(out(name)), cwd=d)


# --- byte-level writers (struct) -------------------------------------------------------------
def pcap_be(name, frames, linktype, nano):
    magic = 0xa1b23c4d if nano else 0xa1b2c3d4
    b = struct.pack('>IHHiIII', magic, 2, 4, 0, 0, 65535, linktype)
    for i, f in enumerate(frames):
        d = bytes(f)
        frac = 123456789 + i if nano else 123456 + i
        b += struct.pack('>IIII', T0 + i, frac, len(d), len(d) + (4 if i == 1 else 0)) + d
    open(out(name), 'wb').write(b)


def opt(e, code, val):
    return struct.pack(e + 'HH', code, len(val)) + val + b'\0' * (-len(val) % 4)


def opts(e, items):
    if not items:
        return b''
    return b''.join(opt(e, c, v) for c, v in items) + struct.pack(e + 'HH', 0, 0)


def blk(e, t, body):
    n = 12 + len(body)
    return struct.pack(e + 'II', t, n) + body + struct.pack(e + 'I', n)


def shb(e, items=()):
    return blk(e, 0x0A0D0D0A, struct.pack(e + 'IHHq', 0x1A2B3C4D, 1, 0, -1) + opts(e, list(items)))


def idb(e, linktype, snap, items=()):
    return blk(e, 1, struct.pack(e + 'HHI', linktype, 0, snap) + opts(e, list(items)))


def epb(e, ifid, ts, data, orig=None, items=()):
    d = bytes(data)
    body = struct.pack(e + 'IIIII', ifid, ts >> 32, ts & 0xffffffff, len(d), orig or len(d))
    return blk(e, 6, body + d + b'\0' * (-len(d) % 4) + opts(e, list(items)))


def pb(e, ifid, ts, data, items=()):
    d = bytes(data)
    body = struct.pack(e + 'HHIIII', ifid, 0, ts >> 32, ts & 0xffffffff, len(d), len(d))
    return blk(e, 2, body + d + b'\0' * (-len(d) % 4) + opts(e, list(items)))


def spb(e, data, orig=None):
    d = bytes(data)
    return blk(e, 3, struct.pack(e + 'I', orig or len(d)) + d + b'\0' * (-len(d) % 4))


def sections_pcapng(name):
    """Two sections (big-endian, then little-endian), five interfaces, every packet block kind."""
    B, L = '>', '<'
    s = shb(B, [(4, b'make-capture-fixtures.py')])
    s += idb(B, 1, 262144, [(2, b'eth0'), (3, b'uplink, big-endian section'), (9, b'\x09')])  # if 0: ns
    s += idb(B, 228, 128, [(2, b'tun0')])  # if 1: µs (default), snaplen 128
    s += epb(B, 0, T0 * 10**9 + 123456789, eth_frames[0], items=[(1, b'first comment'), (2, struct.pack(B + 'I', 1))])
    s += blk(B, 0x00000BEE, b'unknown block body!!')  # an unknown block type (20-byte body)
    s += epb(B, 1, T0 * 10**6 + 500000, ip4_esp[1])
    s += spb(B, eth_frames[1])  # SPB: interface 0 of this section
    s += blk(B, 5, struct.pack(B + 'III', 0, 0, 0))  # ISB, skipped silently
    s += shb(L)
    s += idb(L, 101, 0, [(9, b'\x94'), (14, struct.pack(L + 'q', 3600)), (2, b'raw0')])  # if 2: 2^-20 s, +1 h
    s += idb(L, 113, 65535, [(3, 'Linux cooked (caf\u00e9)'.encode())])  # if 3
    s += epb(L, 0, (T0 - 3600) * 2**20 + 2**19, ip6_esp[0], items=[(1, 'UTF-8 comment: caf\u00e9 \u2713'.encode()), (1, b'second')])
    s += pb(L, 1, T0 * 10**6 + 1, CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b'\x02\0\0\0\0\x01\0\0', proto=0x0800) / ip4_natt,
            items=[(1, b'obsolete packet block'), (2, struct.pack(L + 'I', 2))])
    s += epb(L, 0, (T0 - 3600) * 2**20 + 3, ip4_plain, orig=200)
    open(out(name), 'wb').write(s)


# --- tshark oracle --------------------------------------------------------------------------
FIELDS = ['frame.time_epoch', 'frame.cap_len', 'frame.len', 'frame.interface_id', 'frame.comment', 'frame.md5_hash']


def oracle(name, link_types, tool):
    res = subprocess.run(['tshark', '-n', '-r', out(name), '-o', 'frame.generate_md5_hash:TRUE', '-T', 'json',
                          '-e', *sum([[f] if i == 0 else ['-e', f] for i, f in enumerate(FIELDS)], [])],
                         check=True, capture_output=True, text=True)
    frames = []
    for p in json.loads(res.stdout):
        f = p['_source']['layers']
        g = lambda k: f.get(k, [None])[0]
        frames.append({'epoch': g('frame.time_epoch'), 'capLen': int(g('frame.cap_len')), 'len': int(g('frame.len')),
                       'ifId': int(g('frame.interface_id') or 0), 'comments': f.get('frame.comment', []),
                       'md5': g('frame.md5_hash')})
    with open(out(name), 'rb') as fh:
        head = fh.read(4)
    fmt = 'pcapng' if head == b'\x0a\x0d\x0d\x0a' else 'pcap'
    MANIFEST[name] = {'format': fmt, 'tool': tool, 'linkTypes': link_types, 'frames': frames}


def main():
    os.makedirs(OUT, exist_ok=True)
    # text2pcap: hex dumps of Scapy packets -> pcap / pcapng, microsecond timestamps
    text2pcap('t2p-eth.pcap', eth_frames, 1, 'pcap')
    oracle('t2p-eth.pcap', [1], 'text2pcap -F pcap -l 1 -t')
    text2pcap('t2p-eth.pcapng', eth_frames, 1, 'pcapng')
    oracle('t2p-eth.pcapng', [1], 'text2pcap -F pcapng -l 1 -t')
    text2pcap('t2p-raw4.pcap', raw4, 228, 'pcap')
    oracle('t2p-raw4.pcap', [228], 'text2pcap -F pcap -l 228')
    text2pcap('t2p-raw6.pcapng', ip6_esp, 229, 'pcapng')
    oracle('t2p-raw6.pcapng', [229], 'text2pcap -F pcapng -l 229')
    # editcap: nanosecond pcap, link type rewrite to LINKTYPE_RAW, pcap -> pcapng
    run('editcap', '-F', 'nsecpcap', out('t2p-eth.pcap'), out('editcap-eth-nsec.pcap'))
    oracle('editcap-eth-nsec.pcap', [1], 'editcap -F nsecpcap t2p-eth.pcap')
    run('editcap', '-T', 'rawip', out('t2p-raw4.pcap'), out('editcap-raw.pcap'))
    oracle('editcap-raw.pcap', [101], 'editcap -T rawip t2p-raw4.pcap')
    # Scapy wrpcap: tagged Ethernet, SLL, SLL2, BSD NULL, raw IPv6, mixed raw
    tagged = [Ether(**MAC) / Dot1Q(vlan=100) / ip4_esp[0], Ether(**MAC) / Dot1AD(vlan=200) / Dot1Q(vlan=100) / ip4_esp[1],
              Ether(**MAC) / Dot1Q(vlan=7) / ip6_esp[0]]
    pkts = {'scapy-vlan-qinq.pcap': (tagged, 1),
            'scapy-sll.pcap': ([CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b'\x02\0\0\0\0\x01\0\0', proto=0x0800) / p for p in ip4_esp]
                               + [CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=b'\x02\0\0\0\0\x02\0\0', proto=0x86dd) / ip6_esp[0]], 113),
            'scapy-sll2.pcap': ([CookedLinuxV2(proto=0x0800, ifindex=2, pkttype=0, lladdrtype=1, lladdrlen=6, src=b'\x02\0\0\0\0\x01\0\0') / p for p in ip4_esp], 276),
            'scapy-null.pcap': ([struct.pack('<I', 2) / p for p in ip4_esp] + [struct.pack('<I', 30) / ip6_esp[0]], 0),
            'scapy-raw6.pcap': (ip6_esp, 229),
            'scapy-raw-mixed.pcap': (ip4_esp[:2] + ip6_esp[:1], 101)}
    for name, (frames, lt) in pkts.items():
        fixed = []
        for i, p in enumerate(frames):
            p = Raw(p) if isinstance(p, bytes) else p
            p.time = T0 + 0.25 * i
            fixed.append(p)
        wrpcap(out(name), fixed, linktype=lt)
        oracle(name, [lt], 'scapy wrpcap(linktype=%d)' % lt)
    c = [Ether(**MAC) / p for p in ip4_esp]
    for i, p in enumerate(c):
        p.time = T0 + i
        p.comment = ('frame %d: CRYPTO_SUCCESS' % (i + 1)).encode()
    wrpcapng(out('scapy-comments.pcapng'), c)
    oracle('scapy-comments.pcapng', [1], 'scapy wrpcapng with comments')
    # mergecap: one pcapng, three interfaces with three link types (time-ordered merge)
    run('mergecap', '-F', 'pcapng', '-w', out('mergecap-multi.pcapng'), out('t2p-eth.pcap'), out('t2p-raw4.pcap'), out('scapy-sll.pcap'))
    oracle('mergecap-multi.pcapng', [1, 228, 113], 'mergecap -F pcapng t2p-eth.pcap t2p-raw4.pcap scapy-sll.pcap')
    # struct: big-endian pcap (micro and nano), multi-section pcapng with every block kind
    pcap_be('struct-be-micro.pcap', eth_frames[:4], 1, False)
    oracle('struct-be-micro.pcap', [1], 'python struct (big-endian pcap, µs)')
    pcap_be('struct-be-nano.pcap', raw4, 228, True)
    oracle('struct-be-nano.pcap', [228], 'python struct (big-endian pcap, ns)')
    sections_pcapng('struct-sections.pcapng')
    oracle('struct-sections.pcapng', [1, 228, 101, 113], 'python struct (2 sections BE+LE, EPB/SPB/PB, unknown block, ISB, tsresol 9 and 2^-20, tsoffset)')
    # tshark 4.0 reports section-local interface ids; ipsecov2 numbers them across sections
    for f in MANIFEST['struct-sections.pcapng']['frames'][3:]:
        f['ifId'] += 2
    # a tool-made file cut in the middle of its last record
    data = open(out('t2p-eth.pcap'), 'rb').read()
    open(out('truncated-eth.pcap'), 'wb').write(data[:-10])
    MANIFEST['truncated-eth.pcap'] = dict(MANIFEST['t2p-eth.pcap'], tool='t2p-eth.pcap cut 10 bytes short',
                                          frames=MANIFEST['t2p-eth.pcap']['frames'][:-1], truncated=True)
    with open(out('manifest.json'), 'w') as f:
        json.dump(MANIFEST, f, indent=1, ensure_ascii=False)
        f.write('\n')
    print('wrote %d fixtures to %s' % (len(MANIFEST), os.path.relpath(OUT)), file=sys.stderr)


if __name__ == '__main__':
    main()
