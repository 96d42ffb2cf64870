#!/usr/bin/python3
"""Independent check of `ipsecov2 tx` output with Scapy (Debian python3-scapy) and `cryptography`.

Usage: make-tx-check.py OUT.pcap CASES.json

CASES.json = {"frames": [{"plain": HEX of the original IP datagram, "sa": SA}, ...]}, one entry per
frame of OUT.pcap (Ethernet), where SA is
  {"mode": "transport"|"tunnel", "udp": bool, "esn": bool, "high": int,
   "esp": null | {"spi": int, "crypt": Scapy name, "crypt_key": HEX, "auth": Scapy name | "GMAC",
                  "auth_key": HEX, "icv": int},
   "ah":  null | {"spi": int, "auth": Scapy name | "GMAC", "key": HEX, "icv": int}}

Prints one line per frame: "OK" or "FAIL <reason>"; exit status 0 when every frame is OK.

What Scapy 2.5 lacks is done here from the RFC text, with `cryptography`:
  * AES-GMAC (ESP ENCR_NULL_AUTH_AES_GMAC, RFC 4543 sec. 3; AH AUTH_AES_GMAC, RFC 4543 sec. 4):
    GCM with an empty plaintext, nonce = salt || IV; ESP AAD = SPI || Seq (ESN: SPI || SeqH ||
    SeqL) || IV || payload || trailer; AH AAD = the RFC 4302 ICV input (mutable fields and the whole
    Authentication Data field zeroed, Scapy's zero_mutable_fields) || SeqH if ESN; the AH field is
    IV(8) || tag(16) [|| padding].
  * ESP HMAC with ESN (Scapy's ESP verify ignores ESN): ICV = HMAC over SPI..trailer || SeqH
    (RFC 4303 sec. 2.2.1, 3.3.2.1).
UDP encapsulation (RFC 3948) is checked here (ports, length, checksum 0 over IPv4 / valid over
IPv6) and removed before Scapy sees the packet.
"""
import hashlib
import hmac
import json
import struct
import sys

from scapy.all import Ether, IP, IPv6, raw, rdpcap  # noqa: E402
from scapy.layers.ipsec import AH, ESP, SecurityAssociation, zero_mutable_fields  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

HASHES = {'HMAC-MD5-96': (hashlib.md5, 12), 'HMAC-SHA1-96': (hashlib.sha1, 12), 'SHA2-256-128': (hashlib.sha256, 16),
          'SHA2-384-192': (hashlib.sha384, 24), 'SHA2-512-256': (hashlib.sha512, 32)}
EXT = (0, 43, 60)  # hop-by-hop, routing, destination options


def ones(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def l4_offset(b):
    """(offset of the first non-extension header, offset of the byte naming it)."""
    if b[0] >> 4 == 4:
        return (b[0] & 15) * 4, 9
    nh, nh_off, p = b[6], 6, 40
    while nh in EXT:
        nh, nh_off, p = b[p], p, p + (b[p + 1] + 1) * 8
    return p, nh_off


def set_len(b):
    if b[0] >> 4 == 4:
        struct.pack_into('!H', b, 2, len(b))
        struct.pack_into('!H', b, 10, 0)
        ihl = (b[0] & 15) * 4
        struct.pack_into('!H', b, 10, ~ones(bytes(b[:ihl])) & 0xffff)
    else:
        struct.pack_into('!H', b, 4, len(b) - 40)


def strip_udp(b):
    """Check and remove the RFC 3948 UDP header; returns (new bytes, error or None)."""
    off, nh_off = l4_offset(b)
    if b[nh_off] != 17:
        return b, 'not UDP-encapsulated'
    sport, dport, ulen, csum = struct.unpack_from('!HHHH', b, off)
    if sport != 4500 or dport != 4500:
        return b, 'UDP ports %d/%d' % (sport, dport)
    if ulen != len(b) - off:
        return b, 'UDP length %d != %d' % (ulen, len(b) - off)
    if b[0] >> 4 == 4:
        if csum != 0:
            return b, 'IPv4 UDP checksum %04x, expected 0 (RFC 3948 sec. 2.1)' % csum
    else:
        pseudo = bytes(b[8:40]) + struct.pack('!IxxxB', ulen, 17)
        if ones(pseudo + bytes(b[off:])) != 0xffff:
            return b, 'bad IPv6 UDP checksum'
    nb = bytearray(b[:off] + b[off + 8:])
    nb[nh_off] = 50
    set_len(nb)
    return nb, None


def ip_of(b):
    return IP(bytes(b)) if b[0] >> 4 == 4 else IPv6(bytes(b))


def esn_args(sa):
    return {'esn_en': True, 'esn': sa['high']} if sa['esn'] else {}


def check_ah(b, sa):
    """Verify AH; returns (packet after AH removal as bytes, error)."""
    ah = sa['ah']
    pkt = ip_of(b)
    if ah['auth'] == 'GMAC':
        key = bytes.fromhex(ah['key'])
        field = bytes(pkt[AH].icv) + bytes(pkt[AH].padding or b'')
        iv, tag = field[:8], field[8:24]
        clone = zero_mutable_fields(pkt.copy(), sending=False)
        aad = raw(clone) + (struct.pack('!L', sa['high']) if sa['esn'] else b'')
        want = AESGCM(key[:-4]).encrypt(key[-4:] + iv, b'', aad)
        if want != tag:
            return None, 'AH GMAC tag mismatch'
        verify = False
    else:
        verify = True
    s = SecurityAssociation(AH, spi=ah['spi'], auth_algo=ah['auth'] if verify else None,
                            auth_key=bytes.fromhex(ah['key']) if verify else None, **esn_args(sa))
    try:
        out = s.decrypt(pkt, verify=verify)
    except Exception as e:  # IPSecIntegrityError and friends
        return None, 'AH: %s' % e
    return bytearray(raw(out)), None


def as_null(b, ebytes, plaintext):
    """The packet with its ESP turned into NULL-encrypted ESP without IV or ICV (for Scapy)."""
    eoff = len(b) - len(ebytes)
    nb = bytearray(b[:eoff + 8]) + plaintext
    set_len(nb)
    return ip_of(nb)


def check_esp(b, sa):
    esp = sa['esp']
    pkt = ip_of(b)
    e = pkt[ESP]
    ebytes = raw(e)
    verify = True
    ak = bytes.fromhex(esp['auth_key']) if esp['auth_key'] else None
    if esp['auth'] == 'GMAC':
        seqh = struct.pack('!L', sa['high']) if sa['esn'] else b''
        aad = ebytes[:4] + seqh + ebytes[4:-16]
        want = AESGCM(ak[:-4]).encrypt(ak[-4:] + ebytes[8:16], b'', aad)
        if want != ebytes[-16:]:
            return None, 'ESP GMAC tag mismatch'
        pkt = as_null(b, ebytes, ebytes[16:-16])
        crypt, auth, verify, icv = 'NULL', None, False, 0
    elif esp['crypt'] == 'AES-GCM' and esp['icv'] != 16:
        # cryptography's AESGCM takes 16-byte tags only: truncated ICVs (RFC 4106 sec. 6) by hand.
        ck = bytes.fromhex(esp['crypt_key'])
        n = esp['icv']
        seqh = struct.pack('!L', sa['high']) if sa['esn'] else b''
        d = Cipher(algorithms.AES(ck[:-4]), modes.GCM(ck[-4:] + ebytes[8:16], ebytes[-n:], min_tag_length=n)).decryptor()
        d.authenticate_additional_data(ebytes[:4] + seqh + ebytes[4:8])
        try:
            pt = d.update(ebytes[16:-n]) + d.finalize()
        except Exception:
            return None, 'ESP GCM-%d tag mismatch' % (n * 8)
        pkt = as_null(b, ebytes, pt)
        crypt, auth, verify, icv = 'NULL', None, False, 0
    elif sa['esn'] and esp['auth'] in HASHES:
        h, n = HASHES[esp['auth']]
        want = hmac.new(ak, ebytes[:-n] + struct.pack('!L', sa['high']), h).digest()[:n]
        if want != ebytes[-n:]:
            return None, 'ESP HMAC (ESN) mismatch'
        crypt, auth, verify, icv = esp['crypt'], None, False, n
    else:
        crypt, auth, icv = esp['crypt'], esp['auth'], esp['icv']
    kw = dict(spi=esp['spi'], crypt_algo=crypt, crypt_key=bytes.fromhex(esp['crypt_key']) if crypt != 'NULL' and esp['crypt_key'] else None,
              crypt_icv_size=icv, auth_algo=auth, auth_key=ak if auth else None, **esn_args(sa))
    if sa['mode'] == 'tunnel':
        kw['tunnel_header'] = IP() if b[0] >> 4 == 4 else IPv6()
    s = SecurityAssociation(ESP, **kw)
    try:
        out = s.decrypt(pkt, verify=verify)
    except Exception as ex:
        return None, 'ESP: %s' % ex
    return bytearray(raw(out)), None


def check(frame, case):
    sa = case['sa']
    b = bytearray(raw(frame.payload))
    if sa['udp']:
        b, err = strip_udp(b)
        if err:
            return err
    if sa['ah']:
        b, err = check_ah(b, sa)
        if err:
            return err
        if sa['mode'] == 'tunnel' and not sa['esp']:
            off, _ = l4_offset(b)
            b = b[off:]
    if sa['esp']:
        b, err = check_esp(b, sa)
        if err:
            return err
    want = bytes.fromhex(case['plain'])
    if bytes(b) != want:
        return 'decrypted packet differs: %s != %s' % (bytes(b).hex(), want.hex())
    return None


def main():
    frames = rdpcap(sys.argv[1])
    with open(sys.argv[2]) as f:
        cases = json.load(f)['frames']
    if len(frames) != len(cases):
        print('FAIL %d frames but %d cases' % (len(frames), len(cases)))
        return 1
    bad = 0
    for fr, case in zip(frames, cases):
        try:
            err = check(Ether(raw(fr)), case)
        except Exception as ex:
            err = 'exception %r' % ex
        print('OK' if err is None else 'FAIL ' + err)
        bad += err is not None
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
