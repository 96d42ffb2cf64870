#!/usr/bin/python3
"""Make the receive-path fixtures in fixtures/rx/ (re-runnable; output is committed).

Every ESP/AH packet is produced by an implementation that is not ours: Scapy's
scapy.layers.ipsec (Debian python3-scapy 2.5.0, crypto by python3-cryptography). This script
only chooses the inputs (fixed keys, fixed IVs, fixed sequence numbers), writes the captures
and the SA files, and records in manifest.json what the emulated NIC must report for each
frame. Where Scapy cannot produce a case (or produces a non-RFC packet) the script says so in
the case's `source` and in fixtures/rx/README.md:

  * ESP + HMAC with ESN: Scapy 2.5.0 leaves Seqh out of the ICV (AuthAlgo.sign ignores esn for
    ESP), RFC 4303 §2.2.1 / §3.3.2.1 puts it in. We recompute the ICV over
    SPI||Seq||IV||ciphertext||Seqh with Scapy's own MAC object; case `esn-scapy-nonrfc` keeps
    Scapy's raw output and expects an ICV failure.
  * AES-GCM ICV 8/12: Scapy always emits a 16-byte tag (AESGCM ignores crypt_icv_size), so the
    8/12-byte variants are Scapy's packet with the tag cut to its leftmost bytes (RFC 4106 §6,
    GCM's truncated tag = MSB_t(T)), lengths and checksums fixed; checked with python3-cryptography.
  * No AES-GMAC (neither ESP 'AES-NULL-GMAC' nor AH) exists in Scapy 2.5.0: not covered here.
  * Bad padding, truncation, fragments and the NAT-T control messages are edited or hand-built
    packets (bytes changed after Scapy built them), as each case's `source` says.

Run: /usr/bin/python3 scripts/make-rx-fixtures.py
"""
import hashlib
import json
import os
import random
import struct
import sys
import logging

logging.getLogger('scapy.runtime').setLevel(logging.ERROR)
import warnings  # noqa: E402
warnings.filterwarnings('ignore')

import scapy  # noqa: E402
from scapy.all import (ICMP, IP, TCP, UDP, Ether, ICMPv6EchoRequest, IPv6,  # noqa: E402
                       IPv6ExtHdrFragment, Raw, fragment, fragment6, raw)
from scapy.layers.ipsec import AH, AUTH_ALGOS, ESP, SecurityAssociation  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

random.seed(0x1b5ec0)  # nothing below draws from it, but Scapy defaults must never be random
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
OUT = os.path.join(ROOT, 'fixtures', 'rx')
T0 = 1795255200  # 2026-11-21T10:00:00Z
MAC_A, MAC_B = '02:00:00:00:00:01', '02:00:00:00:00:02'

# Transport endpoints (A sends, B = us receives) and tunnel endpoints.
H4 = ('192.0.2.1', '192.0.2.2')
H6 = ('2001:db8::1', '2001:db8::2')
T4 = ('198.51.100.1', '198.51.100.2')
T6 = ('2001:db8:ffff::1', '2001:db8:ffff::2')
I4 = ('10.1.0.1', '10.2.0.1')
I6 = ('2001:db8:1::1', '2001:db8:2::1')

# name: (Scapy name, key bytes incl. salt, block size, IV bytes, AEAD)
ENC = {
    'null': ('NULL', 0, 1, 0, False),
    'des-cbc': ('DES', 8, 8, 8, False),
    '3des-cbc': ('3DES', 24, 8, 8, False),
    'aes-cbc-128': ('AES-CBC', 16, 16, 16, False),
    'aes-cbc-192': ('AES-CBC', 24, 16, 16, False),
    'aes-cbc-256': ('AES-CBC', 32, 16, 16, False),
    'aes-ctr-128': ('AES-CTR', 20, 1, 8, False),
    'aes-ctr-192': ('AES-CTR', 28, 1, 8, False),
    'aes-ctr-256': ('AES-CTR', 36, 1, 8, False),
    'aes-gcm-128': ('AES-GCM', 20, 1, 8, True),
    'aes-gcm-192': ('AES-GCM', 28, 1, 8, True),
    'aes-gcm-256': ('AES-GCM', 36, 1, 8, True),
    'chacha20-poly1305': ('CHACHA20-POLY1305', 36, 1, 8, True),
}
# name: (Scapy name, key bytes, ICV bytes)
INTEG = {
    'hmac-md5-96': ('HMAC-MD5-96', 16, 12),
    'hmac-sha1-96': ('HMAC-SHA1-96', 20, 12),
    'hmac-sha256-128': ('SHA2-256-128', 32, 16),
    'hmac-sha384-192': ('SHA2-384-192', 48, 24),
    'hmac-sha512-256': ('SHA2-512-256', 64, 32),
}
STATUS = ['CRYPTO_SUCCESS', 'CRYPTO_GENERIC_ERROR', 'CRYPTO_TRANSPORT_AH_AUTH_FAILED',
          'CRYPTO_TRANSPORT_ESP_AUTH_FAILED', 'CRYPTO_TUNNEL_AH_AUTH_FAILED',
          'CRYPTO_TUNNEL_ESP_AUTH_FAILED', 'CRYPTO_INVALID_PACKET_SYNTAX', 'CRYPTO_INVALID_PROTOCOL']


def kdf(label, n):
    """Fixed key/IV bytes: SHA-256 chain over a label (stable when cases are added)."""
    out = b''
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f'{label}/{i}'.encode()).digest()
        i += 1
    return out[:n]


def lcm(a, b):
    from math import gcd
    return a * b // gcd(a, b)


# --------------------------------------------------------------------------------------------
# Bundles (one ADD_SA each) and SA files


class Bundle:
    _spi = {}

    def __init__(self, group, name, mode, family, esp=None, integ=None, ah=None, icv=None,
                 natt=None, esn=False, high=0, window=None, over=None, outer=None, hosts=None,
                 spi_esp=None, spi_ah=None):
        self.group, self.name, self.mode, self.family = group, name, mode, family
        self.enc, self.integ, self.ah_integ = esp, integ, ah
        self.icv = icv  # GCM ICV length override (8/12); None = 16
        self.natt, self.esn, self.high, self.window, self.over = natt, esn, high, window, over
        self.outer = outer if outer is not None else family  # outer family for tunnels
        base = 0x10000 * (1 + len(Bundle._spi))
        Bundle._spi[name] = base
        self.spi_esp = spi_esp if spi_esp is not None else (base | 0xe5 if esp is not None else None)
        self.spi_ah = spi_ah if spi_ah is not None else (base | 0xa4 if ah is not None else None)
        if esp is not None:
            self.enc_key = kdf(f'{name}/enc', ENC[esp][1])
            self.int_key = kdf(f'{name}/int', INTEG[integ][1]) if integ else b''
        if ah is not None:
            self.ah_key = kdf(f'{name}/ah', INTEG[ah][1])
        if mode == 'tunnel':
            self.tun = T4 if self.outer == 4 else T6
            self.inner = hosts or (I4 if family == 4 else I6)
        else:
            self.inner = hosts or (H4 if family == 4 else H6)
        group.bundles.append(self)

    # Scapy SAs ------------------------------------------------------------------------------
    def tunnel_header(self):
        if self.mode != 'tunnel':
            return None
        return IP(src=self.tun[0], dst=self.tun[1]) if self.outer == 4 else IPv6(src=self.tun[0], dst=self.tun[1])

    def esp_sa(self, high=None):
        enc = ENC[self.enc]
        kw = dict(crypt_algo=enc[0], crypt_key=self.enc_key or None)
        if self.integ:
            kw.update(auth_algo=INTEG[self.integ][0], auth_key=self.int_key)
        if self.natt:
            kw['nat_t_header'] = UDP(sport=4500, dport=4500)
        if self.esn:
            kw.update(esn_en=True, esn=self.high if high is None else high)
        return SecurityAssociation(ESP, spi=self.spi_esp, tunnel_header=self.tunnel_header(), **kw)

    def ah_sa(self, high=None, tunnel=True):
        kw = dict(auth_algo=INTEG[self.ah_integ][0], auth_key=self.ah_key)
        if self.esn:
            kw.update(esn_en=True, esn=self.high if high is None else high)
        return SecurityAssociation(AH, spi=self.spi_ah, tunnel_header=self.tunnel_header() if tunnel else None, **kw)

    def icv_len(self):
        if ENC[self.enc][4]:
            return self.icv or 16
        return INTEG[self.integ][2] if self.integ else 0

    # SA file --------------------------------------------------------------------------------
    def yaml(self):
        q = json.dumps
        y = [f'  - name: {self.name}', '    direction: inbound', f'    mode: {self.mode}']
        if self.over:
            y.append(f'    over: {self.over}')
        if self.mode == 'tunnel':
            y.append(f'    tunnel: {{ src: {q(self.tun[0])}, dst: {q(self.tun[1])} }}')
            y.append(f'    selector: {{ src: {q(self.inner[0])}, dst: {q(self.inner[1])} }}')
        else:
            y.append(f'    selector: {{ src: {q(self.inner[0])}, dst: {q(self.inner[1])} }}')
        if self.natt:
            y.append(f'    udpEncapsulation: {{ type: {self.natt}, srcPort: 4500, dstPort: 4500 }}')
        if self.esn:
            y.append('    esn: true')
        if self.window is not None:
            y.append(f'    replayWindow: {self.window}')
        if self.esn or self.high:
            y.append(f'    sequence: {{ next: 1, high: {self.high} }}')
        if self.enc is not None:
            y += ['    esp:', f'      spi: 0x{self.spi_esp:08x}', f'      encryption: {q(self.enc)}']
            if self.enc_key:
                y.append(f'      encryptionKey: "0x{self.enc_key.hex()}"')
            y.append(f'      integrity: {self.integ or "none"}')
            if self.integ:
                y.append(f'      integrityKey: "0x{self.int_key.hex()}"')
            if self.icv:
                y.append(f'      icvLength: {self.icv}')
        if self.ah_integ is not None:
            y += ['    ah:', f'      spi: 0x{self.spi_ah:08x}', f'      integrity: {self.ah_integ}',
                  f'      integrityKey: "0x{self.ah_key.hex()}"']
        return '\n'.join(y)


class Group:
    def __init__(self, name, comment, nic=None):
        self.name, self.comment, self.nic = name, comment, nic
        self.bundles = []
        GROUPS.append(self)

    @property
    def sa_file(self):
        return f'{self.name}.sa.yaml'

    def write(self):
        lines = [f'# {self.comment}', '# Generated by scripts/make-rx-fixtures.py (fixed test keys, not secrets).',
                 'version: 1']
        if self.nic:
            lines.append(self.nic)
        lines.append('sas:')
        lines += [b.yaml() for b in self.bundles]
        with open(os.path.join(OUT, self.sa_file), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.chmod(os.path.join(OUT, self.sa_file), 0o600)


GROUPS = []
CASES = []

# --------------------------------------------------------------------------------------------
# Plain inner packets (what the host sees after decapsulation)


def inner_packet(b, k, size=None):
    """k-th deterministic plaintext packet for bundle b (UDP, TCP or ICMP, various lengths)."""
    src, dst = b.inner
    n = size if size is not None else 11 + (len(b.name) * 7 + k * 13) % 53
    body = bytes((0x41 + i + k) & 0xff for i in range(n))
    v6 = ':' in src
    ip = IPv6(src=src, dst=dst, hlim=64) if v6 else IP(src=src, dst=dst, id=0x100 + k, ttl=64)
    kind = k % 3
    if kind == 0:
        p = ip / UDP(sport=40000 + k, dport=5001) / Raw(body)
    elif kind == 1:
        p = ip / TCP(sport=41000 + k, dport=80, seq=1000 * k, ack=1, flags='PA', window=502) / Raw(body)
    else:
        p = ip / (ICMPv6EchoRequest(id=7, seq=k, data=body) if v6 else ICMP(id=7, seq=k) / Raw(body))
    return p.__class__(raw(p))


def l3(p):
    return raw(p)


def fix_lengths(pkt):
    """Rebuild an IP(v6) packet after its ESP bytes changed length."""
    if isinstance(pkt, IP):
        del pkt.len
        del pkt.chksum
    else:
        del pkt.plen
    if pkt.haslayer(UDP) and pkt[UDP].dport == 4500:
        del pkt[UDP].len
    return pkt.__class__(raw(pkt))


def fix_udp_length(pkt):
    """Scapy 2.5.0 builds the IPv4 NAT-T header before appending ESP, leaving UDP Length = 8.
    RFC 768 / RFC 3948 §2.1: Length covers the UDP header and the ESP packet."""
    d = bytearray(raw(pkt))
    o = ip_hdr_len(d)
    struct.pack_into('!H', d, o + 4, len(d) - o)
    return pkt.__class__(bytes(d))


def ip_hdr_len(data):
    return (data[0] & 0x0f) * 4 if data[0] >> 4 == 4 else 40


# --------------------------------------------------------------------------------------------
# Producing ESP / AH packets with Scapy and describing what the NIC must do with them


def esp_plaintext(b, payload, nh):
    block = ENC[b.enc][2]
    padlen = -(len(payload) + 2) % lcm(block, 4)
    return payload + bytes(range(1, padlen + 1)) + bytes([padlen, nh])


def recompute_esn_icv(b, pkt, high):
    """RFC 4303 §3.3.2.1: ICV over SPI||Seq||IV||ciphertext||Seqh (Scapy 2.5.0 omits Seqh)."""
    n = INTEG[b.integ][2]
    e = pkt[ESP]
    body = raw(ESP(spi=e.spi, seq=e.seq, data=e.data[:-n]))
    mac = AUTH_ALGOS[INTEG[b.integ][0]].new_mac(b.int_key)
    mac.update(body + struct.pack('!L', high))
    e.data = e.data[:-n] + mac.finalize()[:n]
    return pkt.__class__(raw(pkt))


def esp_encrypt(b, p, seq, high=None, scapy_esn_icv=False, iv_label=''):
    """Encrypt plain packet p with bundle b's ESP SA. Returns (packet, plaintext bytes)."""
    enc = ENC[b.enc]
    iv = kdf(f'{b.name}/iv/{seq}/{high}/{iv_label}', enc[3]) if enc[3] else None
    sa = b.esp_sa(high)
    h = b.high if high is None else high
    e = sa.encrypt(p, seq_num=seq, iv=iv, esn_en=b.esn or None, esn=h if b.esn else None)
    e = e.__class__(raw(e))
    if b.natt:
        e = fix_udp_length(e)
    if b.esn and b.integ and not scapy_esn_icv:
        e = recompute_esn_icv(b, e, h)
    if enc[4] and b.icv and b.icv != 16:
        e[ESP].data = e[ESP].data[:len(e[ESP].data) - (16 - b.icv)]
        e = fix_lengths(e)
    # The plaintext Scapy encrypted.
    if b.mode == 'tunnel':
        payload, nh = raw(p), (4 if isinstance(p, IP) else 41)
    else:
        rp = raw(p)
        hl = ip_hdr_len(rp)
        payload, nh = rp[hl:], (p.proto if isinstance(p, IP) else p.nh)
    pt = esp_plaintext(b, payload, nh)
    check_esp(b, raw(e), pt, h)
    return e, pt


def check_esp(b, eb, pt, high):
    """Independent check that the packet carries pt (python3-cryptography / Scapy decrypt)."""
    enc = ENC[b.enc]
    eo = esp_offset(b, eb)
    e = ESP(eb[eo:])
    data = e.data
    iv = data[:enc[3]]
    icvn = b.icv_len()
    ct = data[enc[3]:len(data) - icvn]
    if enc[0] == 'AES-GCM':
        key, salt = b.enc_key[:-4], b.enc_key[-4:]
        aad = struct.pack('!LLL', e.spi, high, e.seq) if b.esn else struct.pack('!LL', e.spi, e.seq)
        d = Cipher(algorithms.AES(key), modes.GCM(salt + iv, data[len(data) - icvn:], min_tag_length=icvn)).decryptor()
        d.authenticate_additional_data(aad)
        got = d.update(ct) + d.finalize()
    elif enc[0] == 'NULL':
        got = ct
    else:
        sa = b.esp_sa(high)
        got = sa.crypt_algo.decrypt(sa, e, sa.crypt_key, icvn, esn_en=b.esn, esn=high)
        got = raw(got.data) + bytes(range(1, got.padlen + 1)) + bytes([got.padlen, got.nh])
    assert got == pt, (b.name, got.hex(), pt.hex())


class Frame:
    def __init__(self, data, exp, caplen=None, note=''):
        self.data, self.exp, self.caplen, self.note = data, exp, caplen, note


def ok(b, decrypted, patches, seq_high=None, replay='ok', nxt=0, sa=None):
    e = {'cryptoDone': 1, 'nextCryptoDone': nxt, 'saDeleteReq': 0, 'cryptoStatus': 'CRYPTO_SUCCESS',
         'sa': sa or b.name, 'decrypted': decrypted.hex(), 'inPlace': patches}
    if replay is not None:
        e['replay'] = replay
    if seq_high is not None:
        e['seqHigh'] = seq_high
    return e


def fail(b, status, nxt=0, sa=None, replay=None, seq_high=None):
    e = {'cryptoDone': 1, 'nextCryptoDone': nxt, 'saDeleteReq': 0, 'cryptoStatus': STATUS[status],
         'sa': sa or b.name, 'decrypted': None}
    if replay is not None:
        e['replay'] = replay
    if seq_high is not None:
        e['seqHigh'] = seq_high
    return e


def untouched(detail=None):
    e = {'cryptoDone': 0, 'nextCryptoDone': 0, 'saDeleteReq': 0, 'cryptoStatus': 'CRYPTO_SUCCESS', 'decrypted': None}
    return e


def patch(l3_off, pt):
    return {'off': 14 + l3_off, 'hex': pt.hex()}


def esp_offset(b, e_bytes):
    off = ip_hdr_len(e_bytes)
    if b.natt:
        off += 8
    return off


def flip(data, off):
    d = bytearray(data)
    d[off] ^= 0x5a
    return bytes(d)


def esp_frames(b, p, seq, high=None, **kw):
    """(ESP packet bytes, expected success record) for plain packet p."""
    e, pt = esp_encrypt(b, p, seq, high, **kw)
    eb = raw(e)
    eoff = esp_offset(b, eb)
    pto = eoff + 8 + ENC[b.enc][3]
    return eb, pt, pto


def tamper_esp(b, eb, pt, pto, which):
    """Flip a ciphertext byte (which='ct') or the last ICV byte ('icv')."""
    if which == 'ct' or b.icv_len() == 0:
        return flip(eb, pto + min(len(pt) - 3, 5))
    return flip(eb, len(eb) - 1)


def add_case(name, group, frames, tags, source='scapy', tshark=False, notes=None):
    CASES.append(dict(name=name, group=group, frames=frames, tags=tags, source=source, tshark=tshark, notes=notes))


# --------------------------------------------------------------------------------------------
# The matrix


def esp_matrix():
    g = Group('esp', 'ESP only: every encryption/integrity pair Scapy has, transport and tunnel, IPv4 and IPv6')
    combos = [('null', 'hmac-md5-96'), ('null', 'hmac-sha1-96'), ('des-cbc', 'hmac-sha1-96'),
              ('3des-cbc', 'hmac-sha256-128'), ('aes-cbc-128', 'hmac-sha1-96'), ('aes-cbc-128', 'hmac-sha384-192'),
              ('aes-cbc-192', 'hmac-sha512-256'), ('aes-cbc-256', 'hmac-md5-96'), ('aes-cbc-256', 'hmac-sha256-128'),
              ('aes-ctr-128', 'hmac-sha1-96'), ('aes-ctr-192', 'hmac-sha256-128'), ('aes-ctr-256', 'hmac-sha384-192'),
              ('aes-gcm-128', None), ('aes-gcm-192', None), ('aes-gcm-256', None),
              ('aes-gcm-128', 'icv8'), ('aes-gcm-256', 'icv12'), ('chacha20-poly1305', None)]
    layouts = [('transport', 4, 4), ('transport', 6, 6), ('tunnel', 4, 4), ('tunnel', 6, 6)]
    n = 0
    for enc, integ in combos:
        icv = None
        if integ and integ.startswith('icv'):
            icv, integ = int(integ[3:]), None
        extra = [('tunnel', 6, 4), ('tunnel', 4, 6)] if enc in ('aes-gcm-128', 'aes-cbc-128') and not icv and integ != 'hmac-sha384-192' else []
        for mode, fam, outer in layouts + extra:
            short = f'{enc}-{integ or ("icv%d" % (icv or 16))}'
            fam_name = f'v{fam}' if fam == outer else f'v{fam}in{outer}'
            name = f'esp-{short}-{mode}-{fam_name}'
            b = Bundle(g, name, mode, fam, esp=enc, integ=integ, icv=icv, outer=outer)
            frames = []
            tunnel = mode == 'tunnel'
            for k in (1, 2):
                p = inner_packet(b, k)
                eb, pt, pto = esp_frames(b, p, k)
                frames.append(Frame(eb, ok(b, raw(p), [patch(pto, pt)])))
            which = 'ct' if n % 2 == 0 else 'icv'
            n += 1
            frames.append(Frame(tamper_esp(b, eb, pt, pto, which), fail(b, 5 if tunnel else 3),
                                note=f'frame 2 with one {"ciphertext" if which == "ct" else "ICV"} byte flipped'))
            tsh = enc in TSHARK_ENC and (integ is None or integ in TSHARK_INT)
            add_case(name, g, frames, ['esp', mode, f'ipv{fam}', enc, integ or 'aead', 'tamper'],
                     source='scapy' if not icv else f'scapy, tag cut to {icv} bytes (Scapy emits 16)', tshark=tsh)


TSHARK_ENC = {'null', 'des-cbc', '3des-cbc', 'aes-cbc-128', 'aes-cbc-192', 'aes-cbc-256',
              'aes-ctr-128', 'aes-ctr-192', 'aes-ctr-256', 'aes-gcm-128', 'aes-gcm-192', 'aes-gcm-256'}
TSHARK_INT = set(INTEG)


def ah_matrix():
    g = Group('ah', 'AH only (RFC 4302): every HMAC Scapy has, transport and tunnel, IPv4 and IPv6')
    n = 0
    for integ in INTEG:
        for mode, fam in [('transport', 4), ('transport', 6), ('tunnel', 4), ('tunnel', 6)]:
            name = f'ah-{integ}-{mode}-v{fam}'
            b = Bundle(g, name, mode, fam, ah=integ)
            tunnel = mode == 'tunnel'
            frames = []
            p = inner_packet(b, 1)
            a = b.ah_sa().encrypt(p, seq_num=1)
            a = a.__class__(raw(a))
            assert b.ah_sa().decrypt(a.__class__(raw(a))) is not None
            frames.append(Frame(raw(a), ok(b, raw(p), [])))
            # Frame 2: mutable fields changed in transit (RFC 4302 §3.3.3.1) must still verify.
            p2 = inner_packet(b, 2)
            a2 = b.ah_sa().encrypt(p2, seq_num=2)
            a2 = a2.__class__(raw(a2))
            if fam == 4:
                a2.ttl, a2.tos, a2.flags = 17, 0xb8, 'DF'
                del a2.chksum
            else:
                a2.hlim, a2.tc, a2.fl = 9, 0xb8, 0x12345
            a2 = a2.__class__(raw(a2))
            b.ah_sa().decrypt(a2.__class__(raw(a2)))  # Scapy agrees it verifies
            if tunnel:
                host2 = raw(p2)
            else:
                # Host view keeps the received (mutated) header, protocol/length/checksum fixed.
                h = p2.copy()
                if fam == 4:
                    h.ttl, h.tos, h.flags = 17, 0xb8, 'DF'
                    del h.chksum
                else:
                    h.hlim, h.tc, h.fl = 9, 0xb8, 0x12345
                host2 = raw(h.__class__(raw(h)))
            frames.append(Frame(raw(a2), ok(b, host2, []), note='TTL/hop limit, DSCP, flags/flow label changed after signing'))
            ab = raw(a2)
            if n % 2 == 0:
                t = flip(ab, len(ab) - 3)   # protected payload byte
                what = 'payload'
            else:
                t = flip(ab, ip_hdr_len(ab) + 12)  # first ICV byte
                what = 'ICV'
            n += 1
            frames.append(Frame(t, fail(b, 4 if tunnel else 2), note=f'frame 2 with one {what} byte flipped'))
            add_case(name, g, frames, ['ah', mode, f'ipv{fam}', integ, 'tamper', 'mutable'])


def ah_over_esp(b, e, seq):
    """AH (transport SA) applied over an ESP packet.

    Scapy 2.5.0 cannot sign this: AuthAlgo.sign tests pkt.haslayer(ESP) before AH, so for
    IP/AH/ESP it appends an "ESP ICV" after the ESP data and leaves the AH ICV zero. We let Scapy
    build the AH header (SPI, seq, next header, payload length, padding, IP lengths), put the
    ESP bytes back, and compute the AH ICV the way Scapy's AH branch does (zero_mutable_fields +
    the same MAC object); Scapy's AH verification (which takes the AH branch) must accept it."""
    from scapy.layers.ipsec import zero_mutable_fields
    sa = b.ah_sa(tunnel=False)
    eb = raw(e)
    esp_bytes = eb[ip_hdr_len(eb):]
    ab = raw(sa.encrypt(e.__class__(eb), seq_num=seq))
    off = ip_hdr_len(ab)
    ahlen = (ab[off + 1] + 2) * 4
    ab = ab[:off + ahlen] + esp_bytes  # drop the bogus ICV Scapy appended to the ESP data
    a = e.__class__(ab)
    assert (a.len if isinstance(a, IP) else a.plen + 40) == len(ab)
    n = INTEG[b.ah_integ][2]
    clone = zero_mutable_fields(a.copy(), sending=True)
    mac = AUTH_ALGOS[INTEG[b.ah_integ][0]].new_mac(b.ah_key)
    mac.update(raw(clone))
    ab = ab[:off + 12] + mac.finalize()[:n] + ab[off + 12 + n:]
    sa.decrypt(a.__class__(ab))  # raises IPSecIntegrityError if Scapy disagrees
    return ab


def ah_esp_matrix():
    g = Group('ahesp', 'AH+ESP bundles (AH applied over ESP), transport and tunnel, IPv4 and IPv6')
    for (enc, integ, ah) in [('aes-cbc-128', 'hmac-sha1-96', 'hmac-sha256-128'), ('aes-gcm-128', None, 'hmac-sha1-96'),
                             ('3des-cbc', 'hmac-md5-96', 'hmac-sha512-256')]:
        for mode, fam in [('transport', 4), ('transport', 6), ('tunnel', 4), ('tunnel', 6)]:
            if enc == '3des-cbc' and mode == 'tunnel':
                continue
            name = f'ahesp-{enc}-{integ or "icv16"}-{ah}-{mode}-v{fam}'
            b = Bundle(g, name, mode, fam, esp=enc, integ=integ, ah=ah)
            tunnel = mode == 'tunnel'
            frames = []

            def build(k, tamper_esp_first=False):
                p = inner_packet(b, k)
                e, pt = esp_encrypt(b, p, k)
                e = e.__class__(raw(e))
                if tamper_esp_first:
                    eb = raw(e)
                    pto0 = ip_hdr_len(eb) + 8 + ENC[enc][3]
                    e = e.__class__(flip(eb, len(eb) - 1))
                # AH over the ESP packet: transport AH SA (the outer header already exists).
                ab = ah_over_esp(b, e, k)
                ahlen = (ab[ip_hdr_len(ab) + 1] + 2) * 4
                pto = ip_hdr_len(ab) + ahlen + 8 + ENC[enc][3]
                return p, ab, pt, pto

            for k in (1, 2):
                p, ab, pt, pto = build(k)
                frames.append(Frame(ab, ok(b, raw(p), [patch(pto, pt)])))
            frames.append(Frame(flip(ab, len(ab) - 1), fail(b, 4 if tunnel else 2), note='frame 2, last ESP ICV byte flipped: the AH ICV (over ESP) fails first'))
            p, ab, pt, pto = build(3, tamper_esp_first=True)
            frames.append(Frame(ab, fail(b, 5 if tunnel else 3), note='ESP ICV byte flipped before AH was applied: AH verifies, ESP fails'))
            add_case(name, g, frames, ['ah+esp', mode, f'ipv{fam}', enc, integ or 'aead', ah, 'tamper'])


def natt_matrix():
    g = Group('natt', 'UDP-encapsulated ESP (RFC 3948) on port 4500, plus IKE and NAT-keepalive on 4500')
    for enc, integ in [('aes-gcm-128', None), ('aes-cbc-128', 'hmac-sha1-96')]:
        for mode, fam in [('transport', 4), ('transport', 6), ('tunnel', 4), ('tunnel', 6)]:
            name = f'natt-{enc}-{integ or "icv16"}-{mode}-v{fam}'
            b = Bundle(g, name, mode, fam, esp=enc, integ=integ, natt=mode)
            frames = []
            for k in (1, 2):
                p = inner_packet(b, k)
                eb, pt, pto = esp_frames(b, p, k)
                frames.append(Frame(eb, ok(b, raw(p), [patch(pto, pt)])))
            frames.append(Frame(tamper_esp(b, eb, pt, pto, 'ct'), fail(b, 5 if mode == 'tunnel' else 3), note='frame 2, ciphertext byte flipped'))
            if mode == 'transport' and fam == 4:
                # Same SA, ESP not wrapped in UDP: the SA declares the UDP subtype only.
                plain = Bundle.__new__(Bundle)
                plain.__dict__.update(b.__dict__)
                plain.natt = None
                eb2, _, _ = esp_frames(plain, inner_packet(b, 3), 3)
                frames.append(Frame(eb2, untouched(), note='plain ESP (protocol 50) for an SA that declares udpEncapsulation: not processed'))
            add_case(name, g, frames, ['natt', mode, f'ipv{fam}', enc, integ or 'aead', 'tamper'], tshark=True)
    # An SA without udpEncapsulation still matches ESP-in-UDP/4500 (spec §9 item 21).
    b = Bundle(g, 'natt-any-aes-cbc-256-sha256-transport-v4', 'transport', 4, esp='aes-cbc-256', integ='hmac-sha256-128')
    nb = Bundle.__new__(Bundle)
    nb.__dict__.update(b.__dict__)
    nb.natt = 'transport'
    frames = []
    for k in (1, 2):
        p = inner_packet(b, k)
        eb, pt, pto = esp_frames(nb, p, k)
        frames.append(Frame(eb, ok(b, raw(p), [patch(pto, pt)])))
    p = inner_packet(b, 3)
    eb, pt, pto = esp_frames(b, p, 3)
    frames.append(Frame(eb, ok(b, raw(p), [patch(pto, pt)]), note='the same SA, plain ESP'))
    add_case('natt-any-udp-or-plain', g, frames, ['natt', 'transport', 'ipv4'], tshark=True)
    # IKE (non-ESP marker) and NAT-keepalive on 4500, IKE on 500.
    ike_hdr = kdf('ike-spi-i', 8) + bytes(8) + bytes([33, 0x20, 34, 0x08]) + struct.pack('!LL', 0, 28)
    frames = [
        Frame(raw(IP(src=T4[0], dst=T4[1]) / UDP(sport=4500, dport=4500) / Raw(bytes(4) + ike_hdr)), untouched(), note='IKE_SA_INIT after the non-ESP marker'),
        Frame(raw(IP(src=T4[0], dst=T4[1]) / UDP(sport=4500, dport=4500) / Raw(b'\xff')), untouched(), note='NAT-keepalive (single 0xFF)'),
        Frame(raw(IPv6(src=T6[0], dst=T6[1]) / UDP(sport=4500, dport=4500) / Raw(bytes(4) + ike_hdr)), untouched(), note='IKE over IPv6 on 4500'),
        Frame(raw(IP(src=T4[0], dst=T4[1]) / UDP(sport=500, dport=500) / Raw(ike_hdr)), untouched(), note='IKE on 500'),
    ]
    add_case('natt-ike-keepalive', g, frames, ['natt', 'ike', 'keepalive'], source='hand-built with Scapy layers')


def esn_matrix():
    g = Group('esn', 'Extended sequence numbers (RFC 4303 §2.2.1, App. A): crossing 2^32; sequence.high = Scapy esn of the first frame')
    specs = [('esn-gcm128-h0', 'aes-gcm-128', None, None, 0, 'transport', 4),
             ('esn-gcm128-h5', 'aes-gcm-128', None, None, 5, 'transport', 4),
             ('esn-cbc128-sha256-h0', 'aes-cbc-128', 'hmac-sha256-128', None, 0, 'transport', 4),
             ('esn-cbc128-sha256-h7', 'aes-cbc-128', 'hmac-sha256-128', None, 7, 'tunnel', 6),
             ('esn-chacha-h0', 'chacha20-poly1305', None, None, 0, 'tunnel', 6),
             ('esn-ah-sha256-h0', None, None, 'hmac-sha256-128', 0, 'transport', 4),
             ('esn-ah-sha1-h3', None, None, 'hmac-sha1-96', 3, 'tunnel', 4)]
    for name, enc, integ, ah, h, mode, fam in specs:
        b = Bundle(g, name, mode, fam, esp=enc, integ=integ, ah=ah, esn=True, high=h)
        tunnel = mode == 'tunnel'
        frames = []
        seqs = [(h, 0xfffffff0), (h, 0xfffffffe), (h, 0xffffffff), (h + 1, 1), (h + 1, 2), (h, 0xfffffff8)]
        last = None
        for k, (hi, lo) in enumerate(seqs, 1):
            p = inner_packet(b, k)
            if enc:
                eb, pt, pto = esp_frames(b, p, lo, high=hi)
                frames.append(Frame(eb, ok(b, raw(p), [patch(pto, pt)], seq_high=hi),
                                    note='late packet from the previous subspace, inside the window' if k == 6 else ''))
                last = (eb, pt, pto)
            else:
                a = b.ah_sa(high=hi).encrypt(p, seq_num=lo, esn_en=True, esn=hi)
                a = a.__class__(raw(a))
                b.ah_sa(high=hi).decrypt(a.__class__(raw(a)), esn_en=True, esn=hi)
                frames.append(Frame(raw(a), ok(b, raw(p), [], seq_high=hi)))
                last = (raw(a), None, None)
        eb = frames[4].data
        if enc:
            frames.append(Frame(flip(eb, len(eb) - 1), fail(b, 5 if tunnel else 3), note='frame 5, last ICV byte flipped'))
        else:
            frames.append(Frame(flip(eb, len(eb) - 1), fail(b, 4 if tunnel else 2), note='frame 5, last payload byte flipped'))
        # Same low sequence number as frame 5 but signed with the wrong high half.
        p = inner_packet(b, 9)
        if enc:
            eb, _, _ = esp_frames(b, p, 3, high=h + 7)
        else:
            a = b.ah_sa(high=h + 7).encrypt(p, seq_num=3, esn_en=True, esn=h + 7)
            eb = raw(a)
        frames.append(Frame(eb, fail(b, (5 if tunnel else 3) if enc else (4 if tunnel else 2)), note=f'seq low 3 signed with high {h + 7}: the inferred high is {h + 1}, ICV fails'))
        src = 'scapy' if (ah or not integ) else 'scapy; ICV recomputed with Seqh appended (Scapy 2.5.0 omits it)'
        add_case(name, g, frames, ['esn', mode, f'ipv{fam}', enc or 'ah', integ or ah or 'aead'], source=src)
    # Scapy's own ESN + HMAC output (Seqh not in the ICV): an RFC receiver rejects it.
    b = Bundle(g, 'esn-scapy-nonrfc', 'transport', 4, esp='aes-cbc-128', integ='hmac-sha1-96', esn=True, high=0)
    frames = []
    for k in (1, 2):
        p = inner_packet(b, k)
        eb, _, _ = esp_frames(b, p, k, high=0, scapy_esn_icv=True)
        frames.append(Frame(eb, fail(b, 3), note='Scapy 2.5.0 ESN+HMAC: ICV without Seqh (not RFC 4303 §2.2.1)'))
    add_case('esn-scapy-nonrfc', g, frames, ['esn', 'scapy-divergence'], source='scapy (raw, non-RFC ICV)')


def replay_matrix():
    g = Group('replay', 'Host anti-replay model (RFC 4303 §3.4.3): duplicates and sequence numbers left of the window')
    b64 = Bundle(g, 'replay-gcm128-w64', 'transport', 4, esp='aes-gcm-128')
    b32 = Bundle(g, 'replay-cbc128-sha1-w32', 'transport', 4, esp='aes-cbc-128', integ='hmac-sha1-96', window=32)
    b0 = Bundle(g, 'replay-gcm256-off', 'transport', 6, esp='aes-gcm-256', window=0)
    bah = Bundle(g, 'replay-ah-sha256', 'tunnel', 4, ah='hmac-sha256-128')

    def seqs_case(name, b, seq_verdicts, note=''):
        frames = []
        cache = {}
        for k, (seq, verdict) in enumerate(seq_verdicts, 1):
            if seq not in cache:
                p = inner_packet(b, seq % 50)
                if b.enc:
                    eb, pt, pto = esp_frames(b, p, seq)
                    cache[seq] = (eb, ok(b, raw(p), [patch(pto, pt)]))
                else:
                    a = b.ah_sa().encrypt(p, seq_num=seq)
                    cache[seq] = (raw(a), ok(b, raw(p), []))
            eb, e = cache[seq]
            e = dict(e, replay=verdict)
            frames.append(Frame(eb, e, note=f'seq {seq}: {verdict}'))
        add_case(name, g, frames, ['replay'], notes=note)

    seqs_case('replay-duplicate', b64, [(1, 'ok'), (2, 'ok'), (3, 'ok'), (2, 'duplicate'), (3, 'duplicate'), (4, 'ok'), (1, 'duplicate')])
    seqs_case('replay-too-old', b64, [(100, 'ok'), (200, 'ok'), (10, 'too-old'), (137, 'ok'), (136, 'too-old'), (200, 'duplicate'), (201, 'ok'), (138, 'ok')],
              note='window 64: after 200 the left edge is 137')
    seqs_case('replay-window32', b32, [(50, 'ok'), (18, 'too-old'), (19, 'ok'), (19, 'duplicate'), (51, 'ok'), (19, 'too-old')])
    seqs_case('replay-off', b0, [(5, 'off'), (5, 'off'), (1, 'off')])
    seqs_case('replay-ah', bah, [(1, 'ok'), (1, 'duplicate'), (70, 'ok'), (6, 'too-old')])


def error_matrix():
    g = Group('errors', 'Malformed, unknown, mismatched and fragmented packets')
    bn = Bundle(g, 'err-null-sha1', 'transport', 4, esp='null', integ='hmac-sha1-96')
    bc = Bundle(g, 'err-cbc128-sha1', 'transport', 4, esp='aes-cbc-128', integ='hmac-sha1-96')
    bg6 = Bundle(g, 'err-gcm128-v6', 'transport', 6, esp='aes-gcm-128')
    bah = Bundle(g, 'err-ah-sha256', 'transport', 4, ah='hmac-sha256-128')
    bae = Bundle(g, 'err-ahesp', 'transport', 4, esp='aes-cbc-128', integ='hmac-sha1-96', ah='hmac-sha1-96')

    # --- truncation
    frames = []
    p = inner_packet(bc, 1, size=40)
    eb, pt, pto = esp_frames(bc, p, 1)
    frames.append(Frame(eb, fail(bc, 6), caplen=14 + len(eb) - 5, note='captured 5 bytes short (inside the ICV): caplen < wire length'))
    p = inner_packet(bc, 2, size=40)
    eb, pt, pto = esp_frames(bc, p, 2)
    e = IP(eb)
    e[ESP].data = e[ESP].data[:-5]
    frames.append(Frame(raw(fix_lengths(e)), fail(bc, 6), note='last 5 bytes removed, IP length fixed: ciphertext not a multiple of 16'))
    p = inner_packet(bn, 3, size=20)
    eb, pt, pto = esp_frames(bn, p, 3)
    e = IP(eb)
    e[ESP].data = e[ESP].data[:10]
    frames.append(Frame(raw(fix_lengths(e)), fail(bn, 6), note='ESP cut to 8+10 bytes: no room for trailer + 12-byte ICV'))
    e = IP(eb)
    e[ESP].data = b''
    frames.append(Frame(raw(fix_lengths(e)), fail(bn, 6), note='ESP header only (8 bytes)'))
    p = inner_packet(bah, 1)
    a = IP(raw(bah.ah_sa().encrypt(p, seq_num=1)))
    ab = raw(a)[:20 + 20]  # AH cut inside its ICV; IP length fixed
    ab = raw(fix_lengths(IP(ab)))
    frames.append(Frame(ab, fail(bah, 6), note='AH cut inside its ICV, IP length fixed'))
    p = inner_packet(bg6, 1)
    eb, pt, pto = esp_frames(bg6, p, 1)
    frames.append(Frame(eb[:40 + 8 + 8 + 1] , fail(bg6, 6), caplen=None, note='IPv6 ESP: IPv6 payload length says more than the frame holds'))
    add_case('truncated', g, frames, ['syntax', 'truncation'], source='Scapy packets, cut afterwards')

    # --- bad padding (NULL encryption so the pad bytes are visible; ICV re-signed with Scapy's HMAC)
    def resign(b, p, payload_pt, seq):
        body = raw(ESP(spi=b.spi_esp, seq=seq, data=payload_pt))
        mac = AUTH_ALGOS[INTEG[b.integ][0]].new_mac(b.int_key)
        mac.update(body)
        return raw(fix_lengths(IP(src=p.src, dst=p.dst, id=p.id, ttl=p.ttl) / ESP(spi=b.spi_esp, seq=seq, data=payload_pt + mac.finalize()[:12])))

    frames = []
    p = inner_packet(bn, 1, size=19)  # UDP 8 + 19 = 27 bytes: + 3 pad + 2 = 32, 4-byte aligned
    payload = raw(p)[20:]
    for pad, note in [(bytes([1, 2, 9]), 'pad bytes 1,2,9'), (bytes(7), 'pad bytes all zero'),
                      (bytes([2, 1, 3]), 'pad bytes 2,1,3')]:
        ptb = payload + pad + bytes([len(pad), p.proto])
        frames.append(Frame(resign(bn, p, ptb, len(frames) + 1), fail(bn, 6), note=note))
    ptb = payload + bytes([1, 2, 3]) + bytes([250, p.proto])
    frames.append(Frame(resign(bn, p, ptb, 4), fail(bn, 6), note='pad length 250 larger than the payload'))
    ptb = payload + bytes([1, 2, 3]) + bytes([3, p.proto])
    e = resign(bn, p, ptb, 5)
    frames.append(Frame(e, ok(bn, raw(p), [patch(20 + 8, ptb)]), note='control: same construction, correct padding 1,2,3'))
    add_case('bad-padding', g, frames, ['syntax', 'padding'], source='ESP payload hand-built, ICV by Scapy\'s HMAC-SHA1-96 object')

    # --- unknown SPI / wrong destination
    frames = []
    p = inner_packet(bc, 4)
    other = Bundle.__new__(Bundle)
    other.__dict__.update(bc.__dict__)
    other.spi_esp = 0xdead0001
    eb, _, _ = esp_frames(other, p, 1)
    frames.append(Frame(eb, untouched(), note='ESP SPI 0xdead0001: no SA'))
    a = raw(SecurityAssociation(AH, spi=0xdead00a4, auth_algo='SHA2-256-128', auth_key=bah.ah_key).encrypt(inner_packet(bah, 2)))
    frames.append(Frame(a, untouched(), note='AH SPI 0xdead00a4: no SA'))
    wrong = Bundle.__new__(Bundle)
    wrong.__dict__.update(bc.__dict__)
    wrong.inner = (H4[0], '192.0.2.99')
    eb, _, _ = esp_frames(wrong, inner_packet(wrong, 5), 5)
    frames.append(Frame(eb, untouched(), note='known SPI, destination 192.0.2.99 is not the SA\'s (spec §5.4 step 2)'))
    add_case('unknown-spi', g, frames, ['lookup'])

    # --- protocol mismatch (status 7)
    frames = []
    p = inner_packet(bae, 1)
    eb, _, _ = esp_frames(bae, p, 1)
    frames.append(Frame(eb, fail(bae, 7), note='AH+ESP bundle, packet has ESP only'))
    a = raw(bae.ah_sa(tunnel=False).encrypt(inner_packet(bae, 2), seq_num=2))
    frames.append(Frame(a, fail(bae, 7), note='AH+ESP bundle, packet has AH only (AH next header is not ESP)'))
    spoof = Bundle.__new__(Bundle)
    spoof.__dict__.update(bc.__dict__)
    spoof.spi_esp = bah.spi_ah
    eb, _, _ = esp_frames(spoof, inner_packet(bc, 3), 3)
    frames.append(Frame(eb, fail(bah, 7), note='ESP packet whose SPI is an AH-only SA\'s'))
    add_case('protocol-mismatch', g, frames, ['protocol'])

    # --- fragments (RFC 4303 §3.4.1: reassembly first; NIC leaves them to the host)
    frames = []
    p = inner_packet(bc, 7, size=200)
    eb, pt, pto = esp_frames(bc, p, 7)
    for fr in fragment(IP(eb), fragsize=128):
        frames.append(Frame(raw(fr), untouched(), note='IPv4 fragment of an ESP packet'))
    p6 = inner_packet(bg6, 8, size=200)
    eb6, _, _ = esp_frames(bg6, p6, 8)
    e6 = IPv6(eb6)
    e6 = IPv6(src=e6.src, dst=e6.dst) / IPv6ExtHdrFragment(id=0x1234) / e6.payload
    for fr in fragment6(e6, 150):
        frames.append(Frame(raw(fr), untouched(), note='IPv6 fragment of an ESP packet'))
    frames.append(Frame(eb, ok(bc, raw(p), [patch(pto, pt)]), note='control: the same ESP packet unfragmented'))
    add_case('fragments', g, frames, ['fragment'], source='Scapy ESP packets split with scapy fragment()/fragment6()')


def tot_matrix():
    g = Group('tot', 'Transport over tunnel: an inner transport-mode ESP SA inside an outer tunnel-mode ESP SA')
    for natt in (None, 'transport-over-tunnel'):
        sfx = '-natt' if natt else ''
        bt = Bundle(g, f'tot-tunnel{sfx}', 'tunnel', 4, esp='aes-gcm-128', natt=natt)
        bu = Bundle(g, f'tot-transport{sfx}', 'transport', 4, esp='aes-cbc-128', integ='hmac-sha1-96', over=bt.name, hosts=I4)
        frames = []

        def build(k, inner_b=bu, tamper_inner=False):
            p = inner_packet(bu, k)
            e1, pt1 = esp_encrypt(inner_b, p, k)
            e1b = raw(e1)
            if tamper_inner:
                e1b = flip(e1b, len(e1b) - 1)
                e1 = IP(e1b)
            e2, pt2 = esp_encrypt(bt, e1, k)
            e2b = raw(e2)
            pto2 = esp_offset(bt, e2b) + 8 + 8
            pto1 = pto2 + 20 + 8 + 16
            return p, e1b, e2b, pt1, pt2, pto1, pto2

        for k in (1, 2):
            p, e1b, e2b, pt1, pt2, pto1, pto2 = build(k)
            frames.append(Frame(e2b, ok(bt, raw(p), [patch(pto2, pt2), patch(pto1, pt1)], nxt=1)))
        frames.append(Frame(flip(e2b, len(e2b) - 1), fail(bt, 5), note='frame 2, outer ICV byte flipped'))
        p, e1b, e2b, pt1, pt2, pto1, pto2 = build(3, tamper_inner=True)
        frames.append(Frame(e2b, fail(bt, 3, nxt=1), note='inner ESP ICV flipped before tunnelling: outer good, inner fails'))
        unk = Bundle.__new__(Bundle)
        unk.__dict__.update(bu.__dict__)
        unk.spi_esp = 0xdead0002
        p, e1b, e2b, pt1, pt2, pto1, pto2 = build(4, inner_b=unk)
        frames.append(Frame(e2b, ok(bt, e1b, [patch(pto2, pt2)], nxt=0), note='inner SPI unknown: only the tunnel portion is checked'))
        add_case(f'transport-over-tunnel{sfx}', g, frames, ['tot', 'tunnel', 'transport'] + (['natt'] if natt else []))


def ndis_profile():
    g = Group('ndis', 'NIC profile ndis: algorithms outside the NDIS set are not offloaded (CryptoDone 0)',
              nic='nic:\n  profile: ndis')
    b1 = Bundle(g, 'ndis-gcm128', 'transport', 4, esp='aes-gcm-128')
    b2 = Bundle(g, 'ndis-chacha', 'transport', 4, esp='chacha20-poly1305')
    b3 = Bundle(g, 'ndis-cbc-sha384', 'transport', 4, esp='aes-cbc-128', integ='hmac-sha384-192')
    b4 = Bundle(g, 'ndis-ctr-sha1', 'transport', 4, esp='aes-ctr-128', integ='hmac-sha1-96')
    frames = []
    p = inner_packet(b1, 1)
    eb, pt, pto = esp_frames(b1, p, 1)
    frames.append(Frame(eb, ok(b1, raw(p), [patch(pto, pt)])))
    for b in (b2, b3, b4):
        eb, _, _ = esp_frames(b, inner_packet(b, 1), 1)
        frames.append(Frame(eb, untouched(), note=f'{b.enc}/{b.integ or "aead"} not in the NDIS set: not offloaded'))
    add_case('ndis-not-offloaded', g, frames, ['profile'])


# --------------------------------------------------------------------------------------------
# Writing


def write_pcap(path, frames):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
        for i, fr in enumerate(frames):
            d = fr.eth
            cap = d[:fr.caplen] if fr.caplen else d
            ts = T0 + i
            f.write(struct.pack('<IIII', ts, (i * 1000 + 123) % 1000000, len(cap), len(d)))
            f.write(cap)


def ethertype(d):
    return 0x0800 if d[0] >> 4 == 4 else 0x86dd


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(('.pcap', '.sa.yaml')) or f == 'manifest.json':
            os.remove(os.path.join(OUT, f))
    esp_matrix()
    ah_matrix()
    ah_esp_matrix()
    natt_matrix()
    esn_matrix()
    replay_matrix()
    error_matrix()
    tot_matrix()
    ndis_profile()
    for g in GROUPS:
        g.write()
    manifest = {
        'generator': 'scripts/make-rx-fixtures.py',
        'scapy': scapy.VERSION,
        'linkType': 1,
        'note': 'frame numbers are 1-based; "decrypted" is the L3 packet of the default (host view) output, '
                'behind the input\'s Ethernet header with ethertype "ethertype"; null = output frame equals input frame. '
                '"inPlace" lists byte patches (offsets from the frame start) turning the input frame into the --in-place output. '
                'A missing "replay"/"seqHigh"/"sa" key means: not checked.',
        'groups': [{'name': g.name, 'saFile': g.sa_file, 'comment': g.comment, 'bundles': [b.name for b in g.bundles]} for g in GROUPS],
        'cases': [],
    }
    total = 0
    for c in CASES:
        cap = f'{c["name"]}.pcap'
        for fr in c['frames']:
            fr.eth = raw(Ether(src=MAC_A, dst=MAC_B, type=ethertype(fr.data))) + fr.data
        write_pcap(os.path.join(OUT, cap), c['frames'])
        frames = []
        for i, fr in enumerate(c['frames'], 1):
            e = dict(frame=i, **fr.exp)
            if e.get('decrypted'):
                e['ethertype'] = ethertype(bytes.fromhex(e['decrypted']))
            if fr.note:
                e['note'] = fr.note
            frames.append(e)
        total += len(frames)
        entry = {'name': c['name'], 'group': c['group'].name, 'saFile': c['group'].sa_file, 'capture': cap,
                 'source': c['source'], 'tags': c['tags'], 'tshark': c['tshark'], 'frames': frames}
        if c['notes']:
            entry['notes'] = c['notes']
        manifest['cases'].append(entry)
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    print(f'{len(CASES)} cases, {total} frames, {len(GROUPS)} SA files -> {OUT}', file=sys.stderr)


if __name__ == '__main__':
    main()
