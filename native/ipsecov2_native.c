/*
 * ipsecov2 native crypto: per-SA reusable OpenSSL contexts for ESP (RFC 4303) and AH (RFC 4302).
 *
 * Built by node-gyp against Node's own headers (node_api.h and the OpenSSL headers Node ships);
 * it links against nothing: every OpenSSL symbol comes from the node binary, which links OpenSSL
 * statically and exports it. The key schedule (and GHASH table) of each SA is set up ONCE when the
 * context is created; per packet only the IV/nonce is set (the provider's init with NULL key, or
 * EVP_CipherInit_ex with NULL cipher/key: see xc below), and HMAC restarts from precomputed
 * inner/outer hash states (struct copy, no allocation).
 *
 * The semantics mirror src/crypto/types.ts (EspTransform / AhTransform) and src/crypto/esp.ts /
 * ah.ts exactly; test/crypto-native.test.ts cross-checks every algorithm against them.
 *
 * Exports (all buffers are Uint8Array + offsets; no allocation per call beyond N-API's own):
 *   info() -> string                         "OpenSSL 3.0.x ..." (the library really in use)
 *   abi -> number                            bumped when the JS-facing API changes
 *   espNew(mode, cipher, key, salt, hash, macKey, ivLen, icvLen, blockSize) -> external
 *   espOpen(ctx, buf, start, end, seqHigh) -> 0 ok / 1 auth failed / 2 bad length / 3 internal
 *   espSeal(ctx, buf, start, end, seqHigh) -> 0 ok / 2 bad length / 3 internal
 *   ahNew(kind, hashOrCipher, key, salt, icvLen) -> external
 *   ahMac(ctx, chunks, seqHigh, iv, ivOff, out, outOff, verify) -> 0 ok / 1 mismatch / 3 internal
 *   tableNew() -> external
 *   tableSet(table, slot, espKind, espCtx, ahKind, ahCtx)   kinds: 0 none, 1 native, 2 fallback
 *   runBatch(table, data, meta, n) -> number of jobs deferred to JS (their RESULT is set to -1)
 *   setDirect(on?) -> previous          cipher contexts made from now on call the provider's
 *                                        functions directly (default) or go through EVP
 *   madeCounts() -> [direct, evp]        cipher contexts made each way so far
 *   textNew() -> external                   the rx output writer's registered text pieces
 *   textPiece(text, index, bytes)           keep a copy of bytes as piece `index`
 *   emitBatch(text, plan, n, arena, data, epbBuf, epbOff, lineBuf, lineOff, ends, iov?) -> bool
 *                                        pcapng EPBs and OOB lines of n planned rx frames; with
 *                                        iov, EPBs that fit are built around their payloads where
 *                                        they lie in data, and iov says where (threadWritev)
 *   threadBatch(tid) -> bool             thread `tid` of this process (Linux) scheduled as
 *                                        SCHED_BATCH: same CPU share, but its wake-ups do not
 *                                        preempt a running thread (src/pipeline/priority.ts)
 *   pipeSize(fd, bytes) -> size          make pipe `fd` hold `bytes` (Linux F_SETPIPE_SZ): its
 *                                        size after, or -errno (-ENOSYS elsewhere)
 *   soleOpener(fd) -> 1 | 0 | -errno     no other open file description refers to fd's file
 *                                        (a write lease, taken and released at once); -ENOSYS elsewhere
 *   readable(fd) -> 1 | 0 | -errno | null  a read of `fd` would not block now (bytes, end of input
 *                                        or an error to report): poll() with no wait; null off Linux
 *   waitNew(fd, cb) -> external | -errno  a watcher for `fd` on the event loop (libuv's uv_poll);
 *                                        -errno for one it cannot watch (a regular file: EPERM)
 *   waitStart(w) -> 0 | -errno           cb(status) once, when `fd` is readable (status < 0: a
 *                                        libuv error); keeps the event loop alive until then
 *   waitClose(w)                         stop and close the watcher (later calls with it throw)
 *   heapHuge(reserve) -> bytes | -errno | null  glibc's main heap keeps freed memory, and the
 *                                        heap it grows by now (reserve + 64 MiB) is backed by
 *                                        transparent huge pages (src/pipeline/heap.ts): bytes
 *                                        advised (0 when already done); null without Linux+glibc
 *   threadNew(table, cb, words) -> external   a crypto thread running batches on `table`
 *                                        ("Crypto threads" below; words: Int32Array over a
 *                                        SharedArrayBuffer, threadWords long)
 *   threadRun(thread, id, data, meta, n, srcs?)  queue a batch (runBatch's arguments)
 *   threadWait(thread, id)               the main thread waits for batch id: cb(id) once it is done
 *   threadHelp(thread, id, table, data, meta, n, srcs?) -> jobs run  the main thread runs the jobs
 *                                        of batch id the thread has not taken yet, on its own table
 *   threadClose(thread)                  stop and join the thread; queued batches are dropped
 *   threadWords -> number                length of threadNew's words
 *   threadWrite(thread, id, fd, bytes, pos)  queue a pwrite on the thread (threadNew(null, ...):
 *                                        a thread for writes only); done like a batch, the
 *                                        write's errno (0: written) where a batch has its
 *                                        deferred count
 *   threadWritev(thread, id, fd, bytes, iov, n, pos, aux?)  the same, of n pieces of bytes or
 *                                        aux (pwritev)
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#define OPENSSL_SUPPRESS_DEPRECATED 1 /* SHA1_Init & co.: the fastest keyed-HMAC restart */
#include <node_api.h>
#include <uv.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/sha.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#ifdef __linux__
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#undef R_OK /* <fcntl.h> may bring access()'s modes: R_OK is a result code here */
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031 /* <fcntl.h> defines it under _GNU_SOURCE only */
#endif
#ifndef SCHED_BATCH
#define SCHED_BATCH 3 /* <sched.h> defines it under _GNU_SOURCE only */
#endif
#ifndef F_SETLEASE
#define F_SETLEASE 1024 /* <fcntl.h> defines these under _GNU_SOURCE only */
#endif
#ifndef F_SETSIG
#define F_SETSIG 10
#endif
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#undef R_OK /* <unistd.h> brings access()'s modes too */
#endif
#ifndef _WIN32
#include <sys/uio.h>
#include <limits.h>
#else
struct iovec { void *iov_base; size_t iov_len; }; /* threadWritev's pieces (written on Linux only) */
#endif
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define ABI_VERSION 14

enum { R_OK = 0, R_AUTH = 1, R_LEN = 2, R_INT = 3 };

/* ------------------------------------------------------------------------------------------ */
/* HMAC (RFC 2104) over the low-level hash APIs, with precomputed inner/outer states.          */

enum { H_NONE = 0, H_MD5 = 1, H_SHA1 = 2, H_SHA256 = 3, H_SHA384 = 4, H_SHA512 = 5 };

typedef union {
  MD5_CTX md5;
  SHA_CTX sha1;
  SHA256_CTX s256;
  SHA512_CTX s512;
} hstate;

typedef struct {
  int alg;
  unsigned dlen; /* digest bytes */
  unsigned blen; /* block bytes */
  hstate in, out;
} hmac_key;

static int h_sizes(int alg, unsigned *dlen, unsigned *blen) {
  switch (alg) {
    case H_MD5: *dlen = 16; *blen = 64; return 1;
    case H_SHA1: *dlen = 20; *blen = 64; return 1;
    case H_SHA256: *dlen = 32; *blen = 64; return 1;
    case H_SHA384: *dlen = 48; *blen = 128; return 1;
    case H_SHA512: *dlen = 64; *blen = 128; return 1;
    default: return 0;
  }
}

static void h_init(int alg, hstate *s) {
  switch (alg) {
    case H_MD5: MD5_Init(&s->md5); break;
    case H_SHA1: SHA1_Init(&s->sha1); break;
    case H_SHA256: SHA256_Init(&s->s256); break;
    case H_SHA384: SHA384_Init(&s->s512); break;
    case H_SHA512: SHA512_Init(&s->s512); break;
  }
}

static void h_update(int alg, hstate *s, const void *p, size_t n) {
  if (n == 0) return;
  switch (alg) {
    case H_MD5: MD5_Update(&s->md5, p, n); break;
    case H_SHA1: SHA1_Update(&s->sha1, p, n); break;
    case H_SHA256: SHA256_Update(&s->s256, p, n); break;
    case H_SHA384: SHA384_Update(&s->s512, p, n); break;
    case H_SHA512: SHA512_Update(&s->s512, p, n); break;
  }
}

static void h_final(int alg, hstate *s, uint8_t *md) {
  switch (alg) {
    case H_MD5: MD5_Final(md, &s->md5); break;
    case H_SHA1: SHA1_Final(md, &s->sha1); break;
    case H_SHA256: SHA256_Final(md, &s->s256); break;
    case H_SHA384: SHA384_Final(md, &s->s512); break;
    case H_SHA512: SHA512_Final(md, &s->s512); break;
  }
}

static int hmac_setup(hmac_key *hk, int alg, const uint8_t *key, size_t klen) {
  uint8_t k[128], pad[128];
  unsigned i;
  memset(hk, 0, sizeof(*hk));
  if (!h_sizes(alg, &hk->dlen, &hk->blen)) return 0;
  hk->alg = alg;
  memset(k, 0, sizeof(k));
  if (klen > hk->blen) { /* RFC 2104 §2: a key longer than the block is hashed first */
    hstate s;
    h_init(alg, &s);
    h_update(alg, &s, key, klen);
    h_final(alg, &s, k);
    OPENSSL_cleanse(&s, sizeof(s));
  } else if (klen > 0) {
    memcpy(k, key, klen);
  }
  for (i = 0; i < hk->blen; i++) pad[i] = k[i] ^ 0x36;
  h_init(alg, &hk->in);
  h_update(alg, &hk->in, pad, hk->blen);
  for (i = 0; i < hk->blen; i++) pad[i] = k[i] ^ 0x5c;
  h_init(alg, &hk->out);
  h_update(alg, &hk->out, pad, hk->blen);
  OPENSSL_cleanse(k, sizeof(k));
  OPENSSL_cleanse(pad, sizeof(pad));
  return 1;
}

static inline void hmac_begin(const hmac_key *hk, hstate *s) { *s = hk->in; }

static void hmac_end(const hmac_key *hk, hstate *s, uint8_t *md /* >= 64 bytes */) {
  uint8_t inner[64];
  h_final(hk->alg, s, inner);
  *s = hk->out;
  h_update(hk->alg, s, inner, hk->dlen);
  h_final(hk->alg, s, md);
}

static inline void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* ------------------------------------------------------------------------------------------ */
/* Contexts                                                                                    */

#define MAGIC_ESP 0x45535031u
#define MAGIC_AH 0x41485f31u
#define MAGIC_TAB 0x54414231u

struct xc_s; /* a cipher context, below */
static void xc_free(struct xc_s *x);

enum { ESP_SEP = 0, ESP_AEAD = 1, ESP_GMAC = 2 };
enum { C_NONE = 0, C_CBC = 1, C_CTR = 2 };

typedef struct {
  uint32_t magic;
  int refs;
  int mode;     /* ESP_SEP / ESP_AEAD / ESP_GMAC */
  int cmode;    /* ESP_SEP: C_NONE / C_CBC / C_CTR */
  int ivLen, icvLen, blockSize;
  struct xc_s *ectx; /* encrypt direction (CTR, GCM, GMAC use only this one for CTR/GMAC) */
  struct xc_s *dctx; /* decrypt direction (CBC, AEAD) */
  uint8_t salt[4];
  int hasMac;
  hmac_key mac;
} esp_ctx;

enum { AH_HMAC = 0, AH_GMAC = 1 };

typedef struct {
  uint32_t magic;
  int refs;
  int kind;
  int icvLen;
  hmac_key mac;
  struct xc_s *ectx;
  uint8_t salt[4];
} ah_ctx;

static void esp_release(esp_ctx *c) {
  if (!c || --c->refs > 0) return;
  xc_free(c->ectx);
  xc_free(c->dctx);
  OPENSSL_cleanse(c, sizeof(*c));
  free(c);
}

static void ah_release(ah_ctx *c) {
  if (!c || --c->refs > 0) return;
  xc_free(c->ectx);
  OPENSSL_cleanse(c, sizeof(*c));
  free(c);
}

/*
 * A cipher context with the key schedule set once, for one direction (enc: 1 encrypt, 0 decrypt).
 *
 * Per packet, OpenSSL 3.0's EVP layer costs more than AES-GCM itself on small packets: every
 * EVP_CipherInit_ex looks the IV length up by name (OSSL_PARAM strcmp), and every tag get/set goes
 * through EVP_CIPHER_CTX_ctrl's translation to parameters (measured: ~60 % of a 64-byte GCM open).
 * So where the cipher comes from a provider that lists its implementation
 * (OSSL_PROVIDER_query_operation, public API), the context calls that implementation's functions
 * directly (provider-cipher(7): the same functions EVP calls, with the lengths known once). EVP
 * stays the fallback, and setDirect(false) / IPSECOV2_NATIVE_EVP=1 forces it (tests compare both).
 */
typedef struct xc_s {
  EVP_CIPHER_CTX *evp;   /* the EVP path (NULL when direct) */
  EVP_CIPHER *ciph;      /* direct: held so its provider stays loaded while the context lives */
  void *alg;             /* direct: the provider's context, key set */
  OSSL_FUNC_cipher_freectx_fn *freectx;
  OSSL_FUNC_cipher_encrypt_init_fn *init; /* encrypt_init or decrypt_init (same signature) */
  OSSL_FUNC_cipher_update_fn *update;
  OSSL_FUNC_cipher_final_fn *final;
  OSSL_FUNC_cipher_get_ctx_params_fn *get_params;
  OSSL_FUNC_cipher_set_ctx_params_fn *set_params;
  size_t ivlen, slack; /* slack: the extra output room EVP grants update/final (a block, or 0) */
} xc;

/* Direct provider calls for new contexts (setDirect, IPSECOV2_NATIVE_EVP). Read when a context is made. */
static int g_direct = -1;
/* Contexts made so far with direct calls and through EVP (all threads; for tests and --version). */
static long g_made_direct, g_made_evp;

static int direct_wanted(void) {
  if (g_direct < 0) {
    const char *e = getenv("IPSECOV2_NATIVE_EVP");
    g_direct = !(e && e[0] && strcmp(e, "0") != 0);
  }
  return g_direct;
}

/* Is `name` one of the ':'-separated names in `names` (case-insensitive, as OpenSSL matches)? */
static int names_have(const char *names, const char *name) {
  size_t n = strlen(name);
  const char *p = names;
  while (*p) {
    const char *e = strchr(p, ':');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == n && OPENSSL_strncasecmp(p, name, n) == 0) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

static int xc_direct(xc *x, EVP_CIPHER *ciph, const char *name, const uint8_t *key, size_t klen, int enc, int nopad) {
  const OSSL_PROVIDER *prov = EVP_CIPHER_get0_provider(ciph);
  const OSSL_ALGORITHM *algs, *a;
  const OSSL_DISPATCH *d;
  OSSL_FUNC_cipher_newctx_fn *newctx = NULL;
  OSSL_FUNC_cipher_encrypt_init_fn *einit = NULL, *dinit = NULL;
  int nocache = 0, ok = 0;
  if (!prov) return 0;
  algs = OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &nocache);
  if (!algs) return 0;
  for (a = algs; a->algorithm_names != NULL; a++)
    if (names_have(a->algorithm_names, name)) break;
  if (a->algorithm_names != NULL) {
    for (d = a->implementation; d->function_id != 0; d++) {
      switch (d->function_id) {
        case OSSL_FUNC_CIPHER_NEWCTX: newctx = OSSL_FUNC_cipher_newctx(d); break;
        case OSSL_FUNC_CIPHER_FREECTX: x->freectx = OSSL_FUNC_cipher_freectx(d); break;
        case OSSL_FUNC_CIPHER_ENCRYPT_INIT: einit = OSSL_FUNC_cipher_encrypt_init(d); break;
        case OSSL_FUNC_CIPHER_DECRYPT_INIT: dinit = OSSL_FUNC_cipher_decrypt_init(d); break;
        case OSSL_FUNC_CIPHER_UPDATE: x->update = OSSL_FUNC_cipher_update(d); break;
        case OSSL_FUNC_CIPHER_FINAL: x->final = OSSL_FUNC_cipher_final(d); break;
        case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: x->get_params = OSSL_FUNC_cipher_get_ctx_params(d); break;
        case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: x->set_params = OSSL_FUNC_cipher_set_ctx_params(d); break;
        default: break;
      }
    }
    x->init = enc ? einit : dinit;
    if (newctx && x->freectx && x->init && x->update && x->final && x->get_params && x->set_params) {
      x->alg = newctx(OSSL_PROVIDER_get0_provider_ctx(prov));
      if (x->alg && x->init(x->alg, key, klen, NULL, 0, NULL)) {
        ok = 1;
        if (nopad) {
          unsigned int pad = 0;
          OSSL_PARAM p[2];
          p[0] = OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_PADDING, &pad);
          p[1] = OSSL_PARAM_construct_end();
          ok = x->set_params(x->alg, p);
        }
      }
    }
  }
  OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
  if (!ok) {
    if (x->alg) x->freectx(x->alg);
    x->alg = NULL;
  }
  return ok;
}

static void xc_free(xc *x) {
  if (!x) return;
  if (x->alg) x->freectx(x->alg);
  EVP_CIPHER_free(x->ciph);
  EVP_CIPHER_CTX_free(x->evp);
  OPENSSL_cleanse(x, sizeof(*x));
  free(x);
}

static xc *cipher_ctx(const char *name, const uint8_t *key, size_t klen, int enc, int nopad) {
  EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, name, NULL);
  xc *x = (xc *)calloc(1, sizeof(*x));
  int bs;
  if (!ciph || !x) goto fail;
  if ((size_t)EVP_CIPHER_get_key_length(ciph) != klen) goto fail;
  x->ivlen = (size_t)EVP_CIPHER_get_iv_length(ciph);
  bs = EVP_CIPHER_get_block_size(ciph);
  x->slack = bs > 1 ? (size_t)bs : 0;
  if (direct_wanted() && xc_direct(x, ciph, name, key, klen, enc, nopad)) {
    x->ciph = ciph;
    __atomic_fetch_add(&g_made_direct, 1, __ATOMIC_RELAXED);
    return x;
  }
  ERR_clear_error();
  x->evp = EVP_CIPHER_CTX_new();
  if (!x->evp) goto fail;
  if (EVP_CipherInit_ex(x->evp, ciph, NULL, key, NULL, enc) != 1) goto fail;
  if (nopad && EVP_CIPHER_CTX_set_padding(x->evp, 0) != 1) goto fail;
  EVP_CIPHER_free(ciph);
  __atomic_fetch_add(&g_made_evp, 1, __ATOMIC_RELAXED);
  return x;
fail:
  xc_free(x);
  EVP_CIPHER_free(ciph);
  ERR_clear_error();
  return NULL;
}

/* Per packet: new IV, same key and direction. */
static inline int xc_init(xc *x, const uint8_t *iv) {
  if (x->alg) return x->init(x->alg, NULL, 0, iv, x->ivlen, NULL) == 1;
  return EVP_CipherInit_ex(x->evp, NULL, NULL, NULL, iv, -1) == 1;
}

/* in[0, inl) -> out (NULL: AEAD additional data); *outl = bytes written. */
static inline int xc_update(xc *x, uint8_t *out, int *outl, const uint8_t *in, int inl) {
  if (x->alg) {
    size_t o = 0;
    int r;
    if (inl == 0) { *outl = 0; return 1; } /* as EVP: nothing to do */
    r = x->update(x->alg, out, &o, (size_t)inl + x->slack, in, (size_t)inl);
    *outl = (int)o;
    return r == 1;
  }
  return EVP_CipherUpdate(x->evp, out, outl, in, inl) == 1;
}

/* 1 ok; 0 failed (for AEAD decryption: the tag did not verify). */
static inline int xc_final(xc *x, uint8_t *out, int *outl) {
  if (x->alg) {
    size_t o = 0;
    int r = x->final(x->alg, out, &o, x->slack);
    *outl = (int)o;
    return r == 1;
  }
  return EVP_CipherFinal_ex(x->evp, out, outl) == 1;
}

static inline int xc_set_tag(xc *x, const uint8_t *tag, int len) {
  if (x->alg) {
    OSSL_PARAM p[2];
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)tag, (size_t)len);
    p[1] = OSSL_PARAM_construct_end();
    return x->set_params(x->alg, p) == 1;
  }
  return EVP_CIPHER_CTX_ctrl(x->evp, EVP_CTRL_AEAD_SET_TAG, len, (void *)tag) == 1;
}

static inline int xc_get_tag(xc *x, uint8_t *tag, int len) {
  if (x->alg) {
    OSSL_PARAM p[2];
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, (size_t)len);
    p[1] = OSSL_PARAM_construct_end();
    return x->get_params(x->alg, p) == 1;
  }
  return EVP_CIPHER_CTX_ctrl(x->evp, EVP_CTRL_AEAD_GET_TAG, len, tag) == 1;
}

/* ------------------------------------------------------------------------------------------ */
/* ESP                                                                                         */

static int esp_bad_length(const esp_ctx *c, int64_t start, int64_t end) {
  int64_t ct = end - start - 8 - c->ivLen - c->icvLen;
  return ct < 2 || ct % c->blockSize != 0;
}

/* 12-byte AEAD nonce: salt(4) || IV(8) (RFC 4106 §4, RFC 4543 §3.2, RFC 7634 §2). */
static inline void make_nonce(const esp_ctx *c, const uint8_t *iv, uint8_t *nonce) {
  memcpy(nonce, c->salt, 4);
  memcpy(nonce + 4, iv, 8);
}

/* The ESP ICV input (separate integrity): SPI..ciphertext, then the ESN high bits (RFC 4303 §2.2.1). */
static void esp_hmac(const esp_ctx *c, const uint8_t *p, size_t n, int64_t seqHigh, uint8_t *md) {
  hstate s;
  hmac_begin(&c->mac, &s);
  h_update(c->mac.alg, &s, p, n);
  if (seqHigh >= 0) {
    uint8_t hi[4];
    put_be32(hi, (uint32_t)seqHigh);
    h_update(c->mac.alg, &s, hi, 4);
  }
  hmac_end(&c->mac, &s, md);
}

/* ct: the ciphertext (the IV right before it); out: where the result goes (ct: in place). */
static int sep_cipher(const esp_ctx *c, const uint8_t *ct, uint8_t *out, int n, int enc) {
  int ol = 0;
  if (c->cmode == C_NONE || n == 0) {
    if (out != ct && n > 0) memcpy(out, ct, (size_t)n);
    return 1;
  }
  if (c->cmode == C_CBC) {
    /* IV = the ivLen (= block size) bytes before the ciphertext (RFC 3602 §2). */
    xc *x = enc ? c->ectx : c->dctx;
    if (!xc_init(x, ct - c->ivLen)) return 0;
    if (!xc_update(x, out, &ol, ct, n) || ol != n) return 0;
    return 1;
  }
  /* C_CTR, RFC 3686 §4: counter block = nonce(4) || IV(8) || 00000001. */
  {
    uint8_t cb[16];
    memcpy(cb, c->salt, 4);
    memcpy(cb + 4, ct - 8, 8);
    cb[12] = 0; cb[13] = 0; cb[14] = 0; cb[15] = 1;
    if (!xc_init(c->ectx, cb)) return 0;
    if (!xc_update(c->ectx, out, &ol, ct, n) || ol != n) return 0;
    return 1;
  }
}

/* GMAC tag: GCM with empty plaintext over AAD segments (RFC 4543). */
static int gmac_tag(xc *x, const uint8_t *nonce, const uint8_t *const *seg, const size_t *len, int nseg,
                    uint8_t *tag) {
  int ol = 0, i;
  uint8_t fin[16];
  if (!xc_init(x, nonce)) return 0;
  for (i = 0; i < nseg; i++) {
    if (len[i] == 0) continue;
    if (len[i] > INT32_MAX) return 0;
    if (!xc_update(x, NULL, &ol, seg[i], (int)len[i])) return 0;
  }
  if (!xc_final(x, fin, &ol)) return 0;
  if (!xc_get_tag(x, tag, 16)) return 0;
  return 1;
}

/* AAD of RFC 4106 §5 / RFC 7634 §2.1; returns its length. */
static int aead_aad(const uint8_t *p, int64_t seqHigh, uint8_t *aad) {
  if (seqHigh < 0) { memcpy(aad, p, 8); return 8; }
  memcpy(aad, p, 4);
  put_be32(aad + 4, (uint32_t)seqHigh);
  memcpy(aad + 8, p + 4, 4);
  return 12;
}

/*
 * Undo an in-place AEAD decryption of ct[0, n): the keystream XOR again (the tag is not checked).
 * On failure the region is wiped rather than left holding unverified plaintext; returns 0.
 */
/* ENCR_NULL_AUTH_AES_GMAC tag over SPI .. the bytes before the ICV at `icvOff` (RFC 4543 §3.3:
   AAD = SPI, [ESN high], sequence number, IV, payload). 0 on an OpenSSL failure. */
static int esp_gmac_tag(const esp_ctx *c, const uint8_t *p, size_t icvOff, int64_t seqHigh, uint8_t *tag) {
  uint8_t nonce[12], hdr[12];
  const uint8_t *seg[2];
  size_t len[2];
  int ns;
  make_nonce(c, p + 8, nonce);
  if (seqHigh < 0) { seg[0] = p; len[0] = icvOff; ns = 1; }
  else {
    aead_aad(p, seqHigh, hdr);
    seg[0] = hdr; len[0] = 12; seg[1] = p + 8; len[1] = icvOff - 8; ns = 2;
  }
  if (!gmac_tag(c->ectx, nonce, seg, len, ns, tag)) { ERR_clear_error(); return 0; }
  return 1;
}

static int aead_restore(esp_ctx *c, const uint8_t *nonce, uint8_t *ct, int n) {
  int ol = 0;
  if (xc_init(c->dctx, nonce) && xc_update(c->dctx, ct, &ol, ct, n) && ol == n) {
    ERR_clear_error();
    return 1;
  }
  ERR_clear_error();
  OPENSSL_cleanse(ct, (size_t)n);
  return 0;
}

/*
 * Open the ESP packet `in` (SPI .. ICV, `total` bytes) into `out`: decrypted when it verifies,
 * else `out` gets the packet as received (a failure never leaves unverified plaintext behind).
 * in == out: in place. Out of place (a job reading the reader's input chunk) saves copying the
 * packet into the job first: the cipher reads the chunk and writes the job's bytes.
 */
static int esp_open_io(esp_ctx *c, const uint8_t *in, uint8_t *out, size_t total, int64_t seqHigh) {
  size_t icvOff = total - (size_t)c->icvLen;
  size_t ctOff = 8 + (size_t)c->ivLen;
  const uint8_t *ct = in + ctOff;
  uint8_t *oct = out + ctOff;
  int n = (int)(icvOff - ctOff);
  int r;
  if (total > INT32_MAX) return R_INT;
  if (out != in) {
    /* header, IV and ICV as received; the ciphertext's place is written below */
    memcpy(out, in, ctOff);
    memcpy(out + icvOff, in + icvOff, (size_t)c->icvLen);
  }

  if (c->mode == ESP_SEP) {
    if (c->hasMac) {
      uint8_t md[64];
      /* RFC 4303 §3.4.4.1: verify before decrypting; a failure leaves the packet untouched. */
      esp_hmac(c, in, icvOff, seqHigh, md);
      if (CRYPTO_memcmp(md, in + icvOff, (size_t)c->icvLen) != 0) { r = R_AUTH; goto untouched; }
    }
    if (!sep_cipher(c, ct, oct, n, 0)) { ERR_clear_error(); r = R_INT; goto untouched; }
    return R_OK;
  }

  if (c->mode == ESP_GMAC) {
    uint8_t tag[16];
    if (out != in) memcpy(oct, ct, (size_t)n);
    if (!esp_gmac_tag(c, in, icvOff, seqHigh, tag)) return R_INT;
    return CRYPTO_memcmp(tag, in + icvOff, 16) == 0 ? R_OK : R_AUTH;
  }

  /*
   * ESP_AEAD: decrypt into `out`; when the tag does not verify, in place, run the same keystream
   * over the region again, which restores the ciphertext (GCM and ChaCha20 are stream ciphers);
   * out of place, copy the ciphertext. So a failure returns the packet untouched and no
   * unverified plaintext is left behind. (Decrypting into a scratch buffer and copying back
   * cost one extra pass over every packet.)
   */
  {
    uint8_t nonce[12], aad[12], fin[16];
    int aadLen, ol = 0, fl = 0, fr, verdict;
    make_nonce(c, in + 8, nonce);
    aadLen = aead_aad(in, seqHigh, aad);
    if (!xc_init(c->dctx, nonce)) goto internal;
    if (!xc_update(c->dctx, NULL, &ol, aad, aadLen)) goto internal;
    if (!xc_update(c->dctx, oct, &ol, ct, n) || ol != n) {
      /* how much was written is unknown: wipe rather than guess (never seen; internal error) */
      if (out != in) { ERR_clear_error(); r = R_INT; goto untouched; }
      OPENSSL_cleanse(oct, (size_t)n);
      goto internal;
    }
    /* the tag as received (in place, `in + icvOff` is the same bytes as `out + icvOff`) */
    if (xc_set_tag(c->dctx, in + icvOff, c->icvLen)) {
      fr = xc_final(c->dctx, fin, &fl);
      if (fr == 1 && fl == 0) return R_OK;
      verdict = fr == 1 ? R_INT : R_AUTH;
    } else verdict = R_INT;
    ERR_clear_error();
    if (out != in) { r = verdict; goto untouched; }
    if (!aead_restore(c, nonce, oct, n)) return R_INT;
    return verdict;
  internal:
    ERR_clear_error();
    r = R_INT;
    goto untouched;
  }

untouched:
  if (out != in) memcpy(oct, ct, (size_t)n);
  return r;
}

static int esp_open(esp_ctx *c, uint8_t *buf, size_t blen, int64_t start, int64_t end, int64_t seqHigh) {
  if (start < 0 || end < start || (uint64_t)end > blen) return R_INT;
  if (esp_bad_length(c, start, end)) return R_LEN;
  return esp_open_io(c, buf + start, buf + start, (size_t)(end - start), seqHigh);
}

static int esp_seal(esp_ctx *c, uint8_t *buf, size_t blen, int64_t start, int64_t end, int64_t seqHigh) {
  if (start < 0 || end < start || (uint64_t)end > blen || end - start > INT32_MAX) return R_INT;
  {
    int64_t n64 = end - start - 8 - c->ivLen - c->icvLen;
    uint8_t *p = buf + start;
    size_t icvOff;
    uint8_t *ct;
    int n;
    if (n64 < 0 || n64 % c->blockSize != 0) return R_LEN;
    n = (int)n64;
    icvOff = (size_t)(end - start) - (size_t)c->icvLen;
    ct = p + 8 + c->ivLen;

    if (c->mode == ESP_SEP) {
      /* RFC 4303 §3.3.2.1: encrypt, then MAC the encrypted packet. */
      if (!sep_cipher(c, ct, ct, n, 1)) { ERR_clear_error(); return R_INT; }
      if (c->hasMac) {
        uint8_t md[64];
        esp_hmac(c, p, icvOff, seqHigh, md);
        memcpy(p + icvOff, md, (size_t)c->icvLen);
      }
      return R_OK;
    }
    if (c->mode == ESP_GMAC) {
      uint8_t tag[16];
      if (!esp_gmac_tag(c, p, icvOff, seqHigh, tag)) return R_INT;
      memcpy(p + icvOff, tag, 16);
      return R_OK;
    }
    {
      uint8_t nonce[12], aad[12], fin[16];
      int aadLen, ol = 0;
      make_nonce(c, p + 8, nonce);
      aadLen = aead_aad(p, seqHigh, aad);
      if (!xc_init(c->ectx, nonce)) goto internal;
      if (!xc_update(c->ectx, NULL, &ol, aad, aadLen)) goto internal;
      if (n > 0 && (!xc_update(c->ectx, ct, &ol, ct, n) || ol != n)) goto internal;
      if (!xc_final(c->ectx, fin, &ol)) goto internal;
      if (!xc_get_tag(c->ectx, p + icvOff, c->icvLen)) goto internal;
      return R_OK;
    internal:
      ERR_clear_error();
      return R_INT;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* AH: MAC over chunks, then the ESN high bits (RFC 4302 §3.3.3.2.2). GMAC per src/crypto/ah.ts:  */
/* nonce = salt || IV, AAD = chunks || ESN high, empty plaintext, 16-byte tag.                 */

static int ah_mac(ah_ctx *c, const uint8_t *const *seg, const size_t *len, int nseg, int64_t seqHigh,
                  const uint8_t *iv, uint8_t *out /* 64 bytes */) {
  uint8_t hi[4];
  int i;
  if (seqHigh >= 0) put_be32(hi, (uint32_t)seqHigh);
  if (c->kind == AH_HMAC) {
    hstate s;
    hmac_begin(&c->mac, &s);
    for (i = 0; i < nseg; i++) h_update(c->mac.alg, &s, seg[i], len[i]);
    if (seqHigh >= 0) h_update(c->mac.alg, &s, hi, 4);
    hmac_end(&c->mac, &s, out);
    return 1;
  }
  {
    uint8_t nonce[12];
    int ol = 0;
    uint8_t fin[16];
    if (!iv) return 0;
    memcpy(nonce, c->salt, 4);
    memcpy(nonce + 4, iv, 8);
    if (!xc_init(c->ectx, nonce)) goto fail;
    for (i = 0; i < nseg; i++) {
      if (len[i] == 0) continue;
      if (len[i] > INT32_MAX) goto fail;
      if (!xc_update(c->ectx, NULL, &ol, seg[i], (int)len[i])) goto fail;
    }
    if (seqHigh >= 0 && !xc_update(c->ectx, NULL, &ol, hi, 4)) goto fail;
    if (!xc_final(c->ectx, fin, &ol)) goto fail;
    if (!xc_get_tag(c->ectx, out, 16)) goto fail;
    return 1;
  fail:
    ERR_clear_error();
    return 0;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Slot table for runBatch                                                                     */

enum { K_NONE = 0, K_NATIVE = 1, K_FALLBACK = 2 };

typedef struct {
  uint32_t magic;
  int32_t cap;
  uint8_t *espKind, *ahKind;
  esp_ctx **esp;
  ah_ctx **ah;
  /* held while a batch runs on it or a slot is set: a crypto thread (below) runs batches on a
     table whose slots the main thread defines */
  uv_mutex_t mu;
} slot_table;

static void table_free(slot_table *t) {
  int32_t i;
  if (!t) return;
  for (i = 0; i < t->cap; i++) {
    esp_release(t->esp[i]);
    ah_release(t->ah[i]);
  }
  free(t->espKind); free(t->ahKind); free(t->esp); free(t->ah);
  t->magic = 0;
  uv_mutex_destroy(&t->mu);
  free(t);
}

static int table_grow(slot_table *t, int32_t need) {
  int32_t cap = t->cap ? t->cap : 16, i;
  uint8_t *ek, *ak;
  esp_ctx **e;
  ah_ctx **a;
  while (cap <= need) cap *= 2;
  if (cap <= t->cap) return 1;
  ek = (uint8_t *)realloc(t->espKind, (size_t)cap);
  if (!ek) return 0;
  t->espKind = ek;
  ak = (uint8_t *)realloc(t->ahKind, (size_t)cap);
  if (!ak) return 0;
  t->ahKind = ak;
  e = (esp_ctx **)realloc(t->esp, sizeof(*e) * (size_t)cap);
  if (!e) return 0;
  t->esp = e;
  a = (ah_ctx **)realloc(t->ah, sizeof(*a) * (size_t)cap);
  if (!a) return 0;
  t->ah = a;
  for (i = t->cap; i < cap; i++) { ek[i] = K_NONE; ak[i] = K_NONE; e[i] = NULL; a[i] = NULL; }
  t->cap = cap;
  return 1;
}

/* Job layout of src/offload/jobs.ts */
enum {
  J_ESP_SLOT = 0, J_AH_SLOT = 1, J_OP = 2, J_OFF = 3, J_LEN = 4, J_ESP = 5, J_AH = 6,
  J_SEQH_ESP = 7, J_SEQH_AH = 8, J_AUX = 9, J_RESULT = 10, J_SRC = 12, J_SRC_OFF = 13, JOB_FIELDS = 14
};
enum { OP_AH_VERIFY = 1, OP_ESP_OPEN = 2, OP_ESP_SEAL = 4, OP_AH_COMPUTE = 8 };
/* Optional (not yet set by jobs.ts): SEQH_ESP / SEQH_AH hold an unsigned 32-bit ESN high value.
   Without them a negative SEQH means "no ESN", as in runJobs — which loses ESN highs >= 2^31. */
enum { OP_ESN_ESP_U32 = 16, OP_ESN_AH_U32 = 32 };
#define NOT_RUN 15

static inline int in_range(int64_t off, int64_t len, size_t dlen) {
  return off >= 0 && len >= 0 && (uint64_t)(off + len) <= dlen;
}

static int ah_job(ah_ctx *a, uint8_t *data, size_t dlen, int64_t off, int64_t len, int64_t aux, int64_t seqHigh,
                  int verify) {
  const uint8_t *seg = data + off;
  size_t l = (size_t)len;
  int ivLen = a->kind == AH_GMAC ? 8 : 0;
  uint8_t md[64];
  if (!in_range(aux, ivLen + a->icvLen, dlen)) return R_INT;
  if (!ah_mac(a, &seg, &l, 1, seqHigh, ivLen ? data + aux : NULL, md)) return R_INT;
  if (verify) return CRYPTO_memcmp(md, data + aux + ivLen, (size_t)a->icvLen) == 0 ? 0 : 1;
  memcpy(data + aux + ivLen, md, (size_t)a->icvLen);
  return 0;
}

/* Mirrors runJobs (src/offload/jobs.ts) job by job. */
/* Sources a batch's jobs copy their region from (J_SRC: 0 none, k: source k - 1): the reader's
   shared input chunks. */
#define MAX_SRCS 16
typedef struct {
  uint8_t *p[MAX_SRCS];
  size_t n[MAX_SRCS];
  uint32_t count;
} batch_srcs;

/* Run jobs [from, to) of a batch; returns how many were deferred to JS (result -1). */
static uint32_t run_range(slot_table *t, uint8_t *data, size_t dlen, int32_t *meta, uint32_t from, uint32_t to, const batch_srcs *srcs) {
  uint32_t i, deferred = 0;
  for (i = from; i < to; i++) {
    int32_t *m = meta + (size_t)i * JOB_FIELDS;
    int32_t op = m[J_OP];
    int32_t es = m[J_ESP_SLOT], as = m[J_AH_SLOT];
    int ek = (es >= 0 && es < t->cap) ? t->espKind[es] : K_NONE;
    int ak = (as >= 0 && as < t->cap) ? t->ahKind[as] : K_NONE;
    int64_t off = m[J_OFF], len = m[J_LEN];
    int64_t shE = (op & OP_ESN_ESP_U32) ? (int64_t)(uint32_t)m[J_SEQH_ESP] : (int64_t)m[J_SEQH_ESP];
    int64_t shA = (op & OP_ESN_AH_U32) ? (int64_t)(uint32_t)m[J_SEQH_AH] : (int64_t)m[J_SEQH_AH];
    int32_t src = m[J_SRC];
    int ahRes = NOT_RUN, espRes = NOT_RUN;
    if (!in_range(off, len, dlen) ||
        (src != 0 && (src < 0 || (uint32_t)src > srcs->count || !in_range(m[J_SRC_OFF], len, srcs->n[src - 1])))) {
      if (op & (OP_AH_VERIFY | OP_AH_COMPUTE)) ahRes = R_INT;
      else if (op & (OP_ESP_OPEN | OP_ESP_SEAL)) espRes = R_INT;
      m[J_RESULT] = ahRes | (espRes << 4);
      continue;
    }
    /* ESP decryption reads the source and writes the job's bytes (no copy first) */
    if (src != 0 && op == OP_ESP_OPEN && ek == K_NATIVE && t->esp[es] != NULL) {
      esp_ctx *e = t->esp[es];
      int64_t esp = m[J_ESP];
      const uint8_t *sp = srcs->p[src - 1] + m[J_SRC_OFF];
      if (esp >= 0 && esp <= len && !esp_bad_length(e, esp, len)) {
        memcpy(data + off, sp, (size_t)esp);
        espRes = esp_open_io(e, sp + esp, data + off + esp, (size_t)(len - esp), shE);
        m[J_RESULT] = ahRes | (espRes << 4);
        continue;
      }
    }
    /* the region's bytes first (a job the JS path takes copies them again) */
    if (src != 0) memcpy(data + off, srcs->p[src - 1] + m[J_SRC_OFF], (size_t)len);
    if (((op & (OP_ESP_OPEN | OP_ESP_SEAL)) && ek == K_FALLBACK) ||
        ((op & (OP_AH_VERIFY | OP_AH_COMPUTE)) && ak == K_FALLBACK)) {
      m[J_RESULT] = -1;
      deferred++;
      continue;
    }
    if (op & OP_AH_VERIFY) {
      ah_ctx *a = ak == K_NATIVE ? t->ah[as] : NULL;
      ahRes = a ? ah_job(a, data, dlen, off, len, m[J_AUX], shA, 1) : R_INT;
    }
    if ((op & OP_ESP_OPEN) && (ahRes == 0 || ahRes == NOT_RUN)) {
      esp_ctx *e = ek == K_NATIVE ? t->esp[es] : NULL;
      espRes = e ? esp_open(e, data, dlen, off + m[J_ESP], off + len, shE) : R_INT;
    }
    if (op & OP_ESP_SEAL) {
      esp_ctx *e = ek == K_NATIVE ? t->esp[es] : NULL;
      espRes = e ? (esp_seal(e, data, dlen, off + m[J_ESP], off + len, shE) == R_OK ? 0 : R_INT) : R_INT;
    }
    if ((op & OP_AH_COMPUTE) && (espRes == 0 || espRes == NOT_RUN)) {
      ah_ctx *a = ak == K_NATIVE ? t->ah[as] : NULL;
      ahRes = a ? ah_job(a, data, dlen, off, len, m[J_AUX], shA, 0) : R_INT;
    }
    m[J_RESULT] = ahRes | (espRes << 4);
  }
  return deferred;
}

/* ------------------------------------------------------------------------------------------ */
/* N-API glue                                                                                  */

#define CHECK(call) \
  do { if ((call) != napi_ok) return NULL; } while (0)

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

static int get_bytes(napi_env env, napi_value v, uint8_t **p, size_t *len) {
  napi_typedarray_type t;
  size_t n = 0;
  void *d = NULL;
  if (napi_get_typedarray_info(env, v, &t, &n, &d, NULL, NULL) != napi_ok) return 0;
  if (t != napi_uint8_array && t != napi_uint8_clamped_array && t != napi_int8_array) return 0;
  *p = (uint8_t *)d;
  *len = n;
  if (!d) *len = 0;
  return 1;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  return t == napi_null || t == napi_undefined;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static void *get_ext(napi_env env, napi_value v, uint32_t magic) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) return NULL;
  if (*(uint32_t *)p != magic) return NULL;
  return p;
}

static void fin_esp(napi_env env, void *data, void *hint) { (void)env; (void)hint; esp_release((esp_ctx *)data); }
static void fin_ah(napi_env env, void *data, void *hint) { (void)env; (void)hint; ah_release((ah_ctx *)data); }
static void fin_tab(napi_env env, void *data, void *hint) { (void)env; (void)hint; table_free((slot_table *)data); }

static int get_string(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, cap, &n) != napi_ok) return 0;
  return n + 1 < cap;
}

/* espNew(mode, cipherName, key, salt|null, hashId, macKey|null, ivLen, icvLen, blockSize) */
static napi_value js_esp_new(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9], out;
  int32_t mode, hash, ivLen, icvLen, bs;
  char cname[64];
  uint8_t *key = NULL, *salt = NULL, *mkey = NULL;
  size_t klen = 0, slen = 0, mklen = 0;
  esp_ctx *c;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 9) return throw_type(env, "espNew: 9 arguments expected");
  if (!get_i32(env, argv[0], &mode) || !get_string(env, argv[1], cname, sizeof(cname)) ||
      !get_i32(env, argv[4], &hash) || !get_i32(env, argv[6], &ivLen) || !get_i32(env, argv[7], &icvLen) ||
      !get_i32(env, argv[8], &bs))
    return throw_type(env, "espNew: bad argument");
  if (!is_nullish(env, argv[2]) && !get_bytes(env, argv[2], &key, &klen)) return throw_type(env, "espNew: key");
  if (!is_nullish(env, argv[3]) && !get_bytes(env, argv[3], &salt, &slen)) return throw_type(env, "espNew: salt");
  if (!is_nullish(env, argv[5]) && !get_bytes(env, argv[5], &mkey, &mklen)) return throw_type(env, "espNew: macKey");
  if (mode < ESP_SEP || mode > ESP_GMAC || ivLen < 0 || ivLen > 16 || icvLen < 0 || icvLen > 64 || bs < 1 || bs > 16)
    return throw_range(env, "espNew: bad sizes");
  if ((mode != ESP_SEP || cname[0]) && (!key || (salt && slen != 4)))
    return throw_range(env, "espNew: key/salt");

  c = (esp_ctx *)calloc(1, sizeof(*c));
  if (!c) return throw_range(env, "espNew: out of memory");
  c->magic = MAGIC_ESP;
  c->refs = 1;
  c->mode = mode;
  c->ivLen = ivLen;
  c->icvLen = icvLen;
  c->blockSize = bs;
  if (salt) memcpy(c->salt, salt, 4);

  if (mode == ESP_SEP) {
    if (hash != H_NONE) {
      unsigned dl, bl;
      if (!h_sizes(hash, &dl, &bl) || icvLen < 1 || (unsigned)icvLen > dl || !hmac_setup(&c->mac, hash, mkey, mklen)) {
        esp_release(c);
        return throw_range(env, "espNew: HMAC");
      }
      c->hasMac = 1;
    } else if (icvLen != 0) {
      esp_release(c);
      return throw_range(env, "espNew: ICV without integrity");
    }
    if (cname[0]) {
      size_t l = strlen(cname);
      if (l > 4 && strcmp(cname + l - 4, "-cbc") == 0) {
        c->cmode = C_CBC;
        c->ectx = cipher_ctx(cname, key, klen, 1, 1);
        c->dctx = cipher_ctx(cname, key, klen, 0, 1);
        if (ivLen != bs) { esp_release(c); return throw_range(env, "espNew: CBC IV must be one block"); }
      } else if (l > 4 && strcmp(cname + l - 4, "-ctr") == 0) {
        if (!salt || ivLen != 8) { esp_release(c); return throw_range(env, "espNew: CTR needs a salt and an 8-byte IV"); }
        c->cmode = C_CTR;
        c->ectx = cipher_ctx(cname, key, klen, 1, 0);
        c->dctx = NULL;
      } else {
        esp_release(c);
        return throw_range(env, "espNew: unsupported cipher");
      }
      if (!c->ectx || (c->cmode == C_CBC && !c->dctx)) { esp_release(c); return throw_range(env, "espNew: OpenSSL refused the cipher"); }
    }
  } else {
    /* AEAD (GCM / ChaCha20-Poly1305) and GMAC: 12-byte nonce, 8-byte explicit IV. */
    if (!salt || ivLen != 8 || bs != 1) { esp_release(c); return throw_range(env, "espNew: AEAD needs salt, IV 8"); }
    if (mode == ESP_GMAC && icvLen != 16) { esp_release(c); return throw_range(env, "espNew: GMAC ICV is 16"); }
    if (mode == ESP_AEAD && (icvLen < 4 || icvLen > 16)) { esp_release(c); return throw_range(env, "espNew: AEAD ICV"); }
    c->ectx = cipher_ctx(cname, key, klen, 1, 0);
    if (mode == ESP_AEAD) c->dctx = cipher_ctx(cname, key, klen, 0, 0);
    if (!c->ectx || (mode == ESP_AEAD && !c->dctx)) { esp_release(c); return throw_range(env, "espNew: OpenSSL refused the cipher"); }
    if (c->ectx->ivlen != 12) { esp_release(c); return throw_range(env, "espNew: nonce length is not 12"); }
  }
  if (napi_create_external(env, c, fin_esp, NULL, &out) != napi_ok) { esp_release(c); return NULL; }
  return out;
}

static napi_value esp_call(napi_env env, napi_callback_info info, int seal) {
  size_t argc = 5;
  napi_value argv[5], out;
  esp_ctx *c;
  uint8_t *buf;
  size_t blen;
  int64_t start, end, sh;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "esp: 5 arguments expected");
  c = (esp_ctx *)get_ext(env, argv[0], MAGIC_ESP);
  if (!c) return throw_type(env, "esp: not an ESP context");
  if (!get_bytes(env, argv[1], &buf, &blen)) return throw_type(env, "esp: buffer must be a Uint8Array");
  if (!get_i64(env, argv[2], &start) || !get_i64(env, argv[3], &end) || !get_i64(env, argv[4], &sh))
    return throw_type(env, "esp: offsets must be numbers");
  CHECK(napi_create_int32(env, seal ? esp_seal(c, buf, blen, start, end, sh) : esp_open(c, buf, blen, start, end, sh), &out));
  return out;
}

static napi_value js_esp_open(napi_env env, napi_callback_info info) { return esp_call(env, info, 0); }
static napi_value js_esp_seal(napi_env env, napi_callback_info info) { return esp_call(env, info, 1); }

/* ahNew(kind, hashIdOrCipherName, key, salt|null, icvLen): HMAC passes the hash id (H_*) as a
   number, GMAC the AES-GCM cipher name (e.g. "aes-128-gcm"). */
static napi_value js_ah_new(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], out;
  int32_t kind, icvLen, hash = 0;
  char cname[64] = {0};
  uint8_t *key = NULL, *salt = NULL;
  size_t klen = 0, slen = 0;
  ah_ctx *c;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "ahNew: 5 arguments expected");
  if (!get_i32(env, argv[0], &kind) || !get_i32(env, argv[4], &icvLen)) return throw_type(env, "ahNew: bad argument");
  if (kind == AH_HMAC) {
    if (!get_i32(env, argv[1], &hash)) return throw_type(env, "ahNew: hash id");
  } else if (!get_string(env, argv[1], cname, sizeof(cname))) {
    return throw_type(env, "ahNew: cipher name");
  }
  if (!is_nullish(env, argv[2]) && !get_bytes(env, argv[2], &key, &klen)) return throw_type(env, "ahNew: key");
  if (!is_nullish(env, argv[3]) && !get_bytes(env, argv[3], &salt, &slen)) return throw_type(env, "ahNew: salt");
  c = (ah_ctx *)calloc(1, sizeof(*c));
  if (!c) return throw_range(env, "ahNew: out of memory");
  c->magic = MAGIC_AH;
  c->refs = 1;
  c->kind = kind;
  c->icvLen = icvLen;
  if (kind == AH_HMAC) {
    unsigned dl, bl;
    if (!h_sizes(hash, &dl, &bl) || icvLen < 1 || (unsigned)icvLen > dl || !hmac_setup(&c->mac, hash, key, klen)) {
      ah_release(c);
      return throw_range(env, "ahNew: HMAC");
    }
  } else if (kind == AH_GMAC) {
    if (!key || !salt || slen != 4 || icvLen != 16) { ah_release(c); return throw_range(env, "ahNew: GMAC key/salt/ICV"); }
    memcpy(c->salt, salt, 4);
    c->ectx = cipher_ctx(cname, key, klen, 1, 0);
    if (!c->ectx) { ah_release(c); return throw_range(env, "ahNew: OpenSSL refused the cipher"); }
  } else {
    ah_release(c);
    return throw_range(env, "ahNew: kind");
  }
  if (napi_create_external(env, c, fin_ah, NULL, &out) != napi_ok) { ah_release(c); return NULL; }
  return out;
}

/* ahMac(ctx, chunks (Uint8Array or array of them), seqHigh, iv|null, ivOff, out, outOff, verify) */
static napi_value js_ah_mac(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], res;
  ah_ctx *c;
  const uint8_t *segs[16];
  size_t lens[16];
  const uint8_t **seg = segs;
  size_t *len = lens;
  uint32_t nseg = 0, i;
  int64_t sh, ivOff, outOff;
  uint8_t *iv = NULL, *out = NULL, md[64];
  size_t ivLen = 0, olen = 0;
  bool isArr = false, verify = false;
  int rc = R_OK;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) return throw_type(env, "ahMac: 8 arguments expected");
  c = (ah_ctx *)get_ext(env, argv[0], MAGIC_AH);
  if (!c) return throw_type(env, "ahMac: not an AH context");
  if (!get_i64(env, argv[2], &sh) || !get_i64(env, argv[4], &ivOff) || !get_i64(env, argv[6], &outOff) ||
      napi_get_value_bool(env, argv[7], &verify) != napi_ok)
    return throw_type(env, "ahMac: bad argument");
  if (!is_nullish(env, argv[3]) && !get_bytes(env, argv[3], &iv, &ivLen)) return throw_type(env, "ahMac: iv");
  if (!get_bytes(env, argv[5], &out, &olen)) return throw_type(env, "ahMac: out");
  if (c->kind == AH_GMAC && (!iv || ivOff < 0 || (uint64_t)ivOff + 8 > ivLen)) return throw_range(env, "ahMac: GMAC needs an 8-byte IV");
  if (outOff < 0 || (uint64_t)outOff + (uint64_t)c->icvLen > olen) return throw_range(env, "ahMac: output out of range");
  CHECK(napi_is_array(env, argv[1], &isArr));
  if (isArr) {
    CHECK(napi_get_array_length(env, argv[1], &nseg));
    if (nseg > 16) {
      seg = (const uint8_t **)malloc(sizeof(*seg) * nseg);
      len = (size_t *)malloc(sizeof(*len) * nseg);
      if (!seg || !len) { free((void *)seg); free(len); return throw_range(env, "ahMac: out of memory"); }
    }
    for (i = 0; i < nseg; i++) {
      napi_value e;
      uint8_t *p;
      if (napi_get_element(env, argv[1], i, &e) != napi_ok || !get_bytes(env, e, &p, &len[i])) {
        if (seg != segs) { free((void *)seg); free(len); }
        return throw_type(env, "ahMac: chunks must be Uint8Arrays");
      }
      seg[i] = p;
    }
  } else {
    uint8_t *p;
    if (!get_bytes(env, argv[1], &p, &lens[0])) return throw_type(env, "ahMac: chunks");
    segs[0] = p;
    nseg = 1;
  }
  if (!ah_mac(c, seg, len, (int)nseg, sh, iv ? iv + ivOff : NULL, md)) rc = R_INT;
  else if (verify) rc = CRYPTO_memcmp(md, out + outOff, (size_t)c->icvLen) == 0 ? R_OK : R_AUTH;
  else memcpy(out + outOff, md, (size_t)c->icvLen);
  if (seg != segs) { free((void *)seg); free(len); }
  CHECK(napi_create_int32(env, rc, &res));
  return res;
}

static napi_value js_table_new(napi_env env, napi_callback_info info) {
  napi_value out;
  slot_table *t = (slot_table *)calloc(1, sizeof(*t));
  (void)info;
  if (!t) return throw_range(env, "tableNew: out of memory");
  if (uv_mutex_init(&t->mu) != 0) { free(t); return throw_range(env, "tableNew: no mutex"); }
  t->magic = MAGIC_TAB;
  if (napi_create_external(env, t, fin_tab, NULL, &out) != napi_ok) { table_free(t); return NULL; }
  return out;
}

/* tableSet(table, slot, espKind, espCtx|null, ahKind, ahCtx|null) */
static napi_value js_table_set(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  slot_table *t;
  int32_t slot, ek, ak;
  esp_ctx *e = NULL;
  ah_ctx *a = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_type(env, "tableSet: 6 arguments expected");
  t = (slot_table *)get_ext(env, argv[0], MAGIC_TAB);
  if (!t || !get_i32(env, argv[1], &slot) || !get_i32(env, argv[2], &ek) || !get_i32(env, argv[4], &ak))
    return throw_type(env, "tableSet: bad argument");
  if (slot < 0 || slot > (1 << 24) || ek < K_NONE || ek > K_FALLBACK || ak < K_NONE || ak > K_FALLBACK)
    return throw_range(env, "tableSet: slot or kind out of range");
  if (ek == K_NATIVE && !(e = (esp_ctx *)get_ext(env, argv[3], MAGIC_ESP))) return throw_type(env, "tableSet: ESP context");
  if (ak == K_NATIVE && !(a = (ah_ctx *)get_ext(env, argv[5], MAGIC_AH))) return throw_type(env, "tableSet: AH context");
  uv_mutex_lock(&t->mu);
  if (!table_grow(t, slot)) { uv_mutex_unlock(&t->mu); return throw_range(env, "tableSet: out of memory"); }
  if (e) e->refs++;
  if (a) a->refs++;
  esp_release(t->esp[slot]);
  ah_release(t->ah[slot]);
  t->esp[slot] = e;
  t->ah[slot] = a;
  t->espKind[slot] = (uint8_t)ek;
  t->ahKind[slot] = (uint8_t)ak;
  uv_mutex_unlock(&t->mu);
  return NULL;
}

/* The arguments of runBatch / threadRun after the first: data, meta, n[, srcs]. */
typedef struct {
  uint8_t *data;
  size_t dlen;
  int32_t *meta;
  uint32_t n;
  batch_srcs srcs;
} batch_args;

/* NULL, or what is wrong (*range: a RangeError, else a TypeError). */
static const char *get_batch_args(napi_env env, const napi_value *argv, size_t argc, batch_args *b, int *range) {
  size_t mlen;
  void *mp = NULL;
  napi_typedarray_type mt;
  int32_t n;
  b->srcs.count = 0;
  *range = 0;
  if (argc >= 4 && !is_nullish(env, argv[3])) {
    uint32_t k, len = 0;
    bool isArr = false;
    if (napi_is_array(env, argv[3], &isArr) != napi_ok || !isArr) return "srcs must be an array";
    if (napi_get_array_length(env, argv[3], &len) != napi_ok) return "srcs must be an array";
    if (len > MAX_SRCS) { *range = 1; return "too many srcs"; }
    for (k = 0; k < len; k++) {
      napi_value v;
      if (napi_get_element(env, argv[3], k, &v) != napi_ok || !get_bytes(env, v, &b->srcs.p[k], &b->srcs.n[k])) return "srcs must hold Uint8Arrays";
    }
    b->srcs.count = len;
  }
  if (!get_bytes(env, argv[0], &b->data, &b->dlen)) return "data must be a Uint8Array";
  if (napi_get_typedarray_info(env, argv[1], &mt, &mlen, &mp, NULL, NULL) != napi_ok || mt != napi_int32_array)
    return "meta must be an Int32Array";
  if (!get_i32(env, argv[2], &n) || n < 0 || (size_t)n * JOB_FIELDS > mlen) { *range = 1; return "bad job count"; }
  b->meta = (int32_t *)mp;
  b->n = (uint32_t)n;
  return NULL;
}

/* Throw what get_batch_args found wrong, named after the call. */
static napi_value throw_batch_args(napi_env env, const char *call, const char *err, int range) {
  char msg[96];
  snprintf(msg, sizeof(msg), "%s: %s", call, err);
  return range ? throw_range(env, msg) : throw_type(env, msg);
}

static uint32_t run_locked(slot_table *t, batch_args *b) {
  uint32_t d;
  if (b->n == 0) return 0;
  uv_mutex_lock(&t->mu);
  d = run_range(t, b->data, b->dlen, b->meta, 0, b->n, &b->srcs);
  uv_mutex_unlock(&t->mu);
  return d;
}

/* runBatch(table, data: Uint8Array, meta: Int32Array, n, srcs?) -> deferred count */
static napi_value js_run_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], out;
  slot_table *t;
  batch_args b;
  const char *err;
  int range;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "runBatch: 4 arguments expected");
  t = (slot_table *)get_ext(env, argv[0], MAGIC_TAB);
  if (!t) return throw_type(env, "runBatch: not a slot table");
  if ((err = get_batch_args(env, argv + 1, argc - 1, &b, &range)) != NULL) return throw_batch_args(env, "runBatch", err, range);
  CHECK(napi_create_uint32(env, run_locked(t, &b), &out));
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Crypto threads: runBatch on a thread of the addon's own (src/pipeline/pool.ts NativeRunner). */
/*                                                                                            */
/* A crypto worker_thread is a whole V8 isolate: ~50-80 ms of CPU to start, its own heap, and  */
/* each batch a structured-clone message both ways. The batch's crypto is one C call           */
/* (run_batch), so a plain thread does the same work: the main thread queues the batch's       */
/* pointers (the JS side keeps the buffers alive and untouched until the result), the thread   */
/* runs it on its own slot table and says so in a word of shared memory the main thread reads  */
/* when it takes the batch; a callback through a thread-safe function (a turn of the event     */
/* loop) comes only for a batch the main thread is waiting for.                                */

#define MAGIC_THR 0x54485231u

typedef struct tjob {
  struct tjob *next;
  int32_t id;
  batch_args b;
  /* a write (threadWrite) instead of a batch when wlen > 0: of wp[0, wlen), or (iovcnt > 0,
     threadWritev) of the iovcnt pieces at iov, wlen bytes in all */
  int fd;
  uint8_t *wp;
  size_t wlen;
  int64_t wpos;
  int iovcnt;
  struct iovec *iov;
} tjob;

typedef struct {
  uint32_t magic;
  slot_table *t;
  napi_ref tref;
  uv_thread_t th;
  uv_mutex_t mu;
  uv_cond_t cv;
  tjob *head, *tail;
  int stop;
  int running; /* the thread was started and not joined yet */
  napi_threadsafe_function tsfn;
  /* Shared with JS (an Int32Array over a SharedArrayBuffer, kept alive by wref): [0] the batch id
     the main thread waits for (0: none); rings of TW_RING by id: [TW_DONE + k] the id of the last
     batch done there, [TW_DEFERRED + k] its deferred jobs, [TW_MICROS + k] its crypto time. */
  int32_t *words;
  napi_ref wref;
  int32_t waitingId; /* main thread only: the batch whose callback ends a wait (threadWait) */
} cthread;

#define TW_RING 64
#define TW_DONE 1
#define TW_DEFERRED (TW_DONE + TW_RING)
#define TW_MICROS (TW_DEFERRED + TW_RING)
#define TW_WERR (TW_MICROS + TW_RING) /* the errno of the first write that failed (threadWrite) */
/* ring of 64-bit words (two int32 each, at an even index): the batch's id (high half) and the
   next of its jobs to take (low half), see run_shared */
#define TW_CLAIM (TW_WERR + 1)
#define TW_FIN (TW_CLAIM + 2 * TW_RING) /* ring: the batch's jobs finished */
#define TW_WORDS (TW_FIN + TW_RING)
typedef char tw_claim_is_even[(TW_CLAIM % 2) == 0 ? 1 : -1];

/* The claim word of ring slot k. */
static int64_t *claim_word(cthread *c, int k) { return (int64_t *)(void *)(c->words + TW_CLAIM) + k; }

/* Jobs taken at a time from a batch that two threads share (run_shared): ~10 us of AES-GCM at
   1400 B, so the one that comes second waits at most that long for the other's last piece. */
#define CLAIM 16

/* Run the jobs of batch `id` (ring slot k) that nobody has taken yet, CLAIM at a time, on table t:
   the crypto thread does this with a batch it takes from its queue, and the main thread
   (threadHelp) with the batch it would otherwise wait for, on a table of its own. Each piece's
   deferred jobs and time are added to the batch's words before the piece counts as finished.
   Returns 1 when this call finished the batch's last jobs (the caller then says it is done); adds
   the jobs it ran to *ran. */
static int run_shared(cthread *c, slot_table *t, batch_args *b, int32_t id, int32_t *ran) {
  int k = id & (TW_RING - 1);
  int64_t *claim = claim_word(c, k);
  int32_t *fin = &c->words[TW_FIN + k];
  int32_t n = (int32_t)b->n;
  int last = 0;
  if (n <= 0) return 1;
  uv_mutex_lock(&t->mu);
  for (;;) {
    /* a piece is taken only while the slot is still this batch's: a batch that the main thread
       finished alone may still sit in the thread's queue, its ring slot since given to a later
       batch (threadRun), and must then take nothing */
    int64_t v = __atomic_load_n(claim, __ATOMIC_ACQUIRE);
    int32_t i = (int32_t)(v & 0xffffffff), e;
    uint64_t t0;
    uint32_t d;
    if ((int32_t)(v >> 32) != id || i >= n) break;
    if (!__atomic_compare_exchange_n(claim, &v, v + CLAIM, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
    e = i + CLAIM < n ? i + CLAIM : n;
    t0 = uv_hrtime();
    d = run_range(t, b->data, b->dlen, b->meta, (uint32_t)i, (uint32_t)e, &b->srcs);
    *ran += e - i;
    if (d > 0) __atomic_fetch_add(&c->words[TW_DEFERRED + k], (int32_t)d, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->words[TW_MICROS + k], (int32_t)((uv_hrtime() - t0 + 500) / 1000), __ATOMIC_RELAXED);
    /* release: the jobs' results and the words above are seen by whoever sees them finished */
    if (__atomic_add_fetch(fin, e - i, __ATOMIC_ACQ_REL) == n) last = 1;
  }
  uv_mutex_unlock(&t->mu);
  return last;
}

/* The running crypto threads, stopped and joined at exit(): process.exit() ends the process
   without the environment's cleanup hooks, and OpenSSL's own atexit cleanup must not run under a
   thread still in a batch (ours is registered after OpenSSL's, so it runs first). */
static uv_once_t g_thr_once = UV_ONCE_INIT;
static uv_mutex_t g_thr_mu;
static void *g_thr_list[64];
static int g_thr_count;

static void cthread_stop(void *arg);

static void cthreads_at_exit(void) {
  int i;
  uv_mutex_lock(&g_thr_mu);
  for (i = 0; i < g_thr_count; i++) cthread_stop(g_thr_list[i]);
  g_thr_count = 0;
  uv_mutex_unlock(&g_thr_mu);
}

static void cthreads_init(void) {
  if (uv_mutex_init(&g_thr_mu) == 0) atexit(cthreads_at_exit);
}

/* pwrite all of [p, p + n) at pos: 0, or the errno of the write that failed */
static int write_all(int fd, const uint8_t *p, size_t n, int64_t pos) {
#ifdef __linux__
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, (off_t)pos);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno > 0 ? errno : EIO;
    }
    if (w == 0) return EIO;
    p += w;
    n -= (size_t)w;
    pos += w;
  }
  return 0;
#else
  (void)fd; (void)p; (void)n; (void)pos;
  return ENOSYS;
#endif
}

/* pwritev all of the n pieces at iov (changed: the pieces written are stepped over) at pos: 0,
   or the errno of the write that failed */
static int writev_all(int fd, struct iovec *iov, int n, int64_t pos) {
#ifdef __linux__
  while (n > 0) {
    ssize_t w = pwritev(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)pos);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno > 0 ? errno : EIO;
    }
    if (w == 0) return EIO;
    pos += w;
    while (n > 0 && (size_t)w >= iov->iov_len) { w -= (ssize_t)iov->iov_len; iov++; n--; }
    if (n > 0) { iov->iov_base = (uint8_t *)iov->iov_base + w; iov->iov_len -= (size_t)w; }
  }
  return 0;
#else
  (void)fd; (void)iov; (void)n; (void)pos;
  return ENOSYS;
#endif
}

static void cthread_main(void *arg) {
  cthread *c = (cthread *)arg;
#ifdef __linux__
  /* as top -H and perf show it; a thread made without a table only writes (threadWrite) */
  prctl(PR_SET_NAME, c->t != NULL ? "ipsecov2-crypto" : "ipsecov2-write", 0, 0, 0);
#endif
  for (;;) {
    tjob *j;
    uint64_t t0, us;
    uint32_t deferred;
    int k;
    uv_mutex_lock(&c->mu);
    while (c->head == NULL && !c->stop) uv_cond_wait(&c->cv, &c->mu);
    if (c->stop) { uv_mutex_unlock(&c->mu); break; }
    j = c->head;
    c->head = j->next;
    if (c->head == NULL) c->tail = NULL;
    uv_mutex_unlock(&c->mu);
    if (j->wlen > 0) {
      int32_t none = 0;
      t0 = uv_hrtime();
      deferred = (uint32_t)(j->iovcnt > 0 ? writev_all(j->fd, j->iov, j->iovcnt, j->wpos) : write_all(j->fd, j->wp, j->wlen, j->wpos)); /* 0 or errno */
      if (deferred != 0) __atomic_compare_exchange_n(&c->words[TW_WERR], &none, (int32_t)deferred, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      us = (uv_hrtime() - t0) / 1000;
      k = j->id & (TW_RING - 1);
      __atomic_store_n(&c->words[TW_DEFERRED + k], (int32_t)deferred, __ATOMIC_RELAXED);
      __atomic_store_n(&c->words[TW_MICROS + k], (int32_t)(us > 0x7fffffff ? 0x7fffffff : us), __ATOMIC_RELAXED);
    } else {
      /* a batch: its words were zeroed when it was queued; the main thread may be taking part
         (threadHelp), and whoever finishes the last jobs says it is done */
      int32_t ran = 0;
      k = j->id & (TW_RING - 1);
      if (!run_shared(c, c->t, &j->b, j->id, &ran)) { free(j); continue; }
    }
    /* Done, then: is the main thread waiting for it? Both sides store, then load (seq_cst), so
       at least one of them sees the other: the main thread finds the batch done, or the
       callback comes (or both; a callback for a batch no longer waited for does nothing). */
    __atomic_store_n(&c->words[TW_DONE + k], j->id, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->words[0], __ATOMIC_SEQ_CST) != j->id) { free(j); continue; }
    if (napi_call_threadsafe_function(c->tsfn, j, napi_tsfn_nonblocking) != napi_ok) free(j);
  }
}

/* Stop the thread (a batch it is running finishes; queued ones are dropped) and wait for it. On the
   main thread, or at exit() (the registry's lock held). */
static void cthread_stop(void *arg) {
  cthread *c = (cthread *)arg;
  tjob *j;
  if (!c->running) return;
  uv_mutex_lock(&c->mu);
  c->stop = 1;
  uv_cond_signal(&c->cv);
  uv_mutex_unlock(&c->mu);
  uv_thread_join(&c->th);
  c->running = 0;
  while ((j = c->head) != NULL) { c->head = j->next; free(j); }
  c->tail = NULL;
}

/* Stop and join the thread and take it off the registry (not at exit()). */
static void cthread_end(cthread *c) {
  int i;
  uv_mutex_lock(&g_thr_mu);
  for (i = 0; i < g_thr_count; i++)
    if (g_thr_list[i] == c) { g_thr_list[i] = g_thr_list[--g_thr_count]; break; }
  cthread_stop(c);
  uv_mutex_unlock(&g_thr_mu);
}

static void cthread_cleanup_hook(void *arg) { cthread_end((cthread *)arg); }

/* On the main thread: cb(id) for the batch waited for (its results are in the words). env NULL:
   the function is being torn down. */
static void cthread_call_js(napi_env env, napi_value cb, void *context, void *data) {
  cthread *c = (cthread *)context;
  tjob *j = (tjob *)data;
  if (env != NULL && cb != NULL && j->id == c->waitingId) {
    napi_value arg, undef;
    c->waitingId = 0;
    napi_unref_threadsafe_function(env, c->tsfn);
    if (napi_get_undefined(env, &undef) == napi_ok && napi_create_int32(env, j->id, &arg) == napi_ok)
      napi_call_function(env, undef, cb, 1, &arg, NULL);
  }
  free(j);
}

static void cthread_release(cthread *c) {
  if (c->tsfn != NULL) {
    napi_release_threadsafe_function(c->tsfn, napi_tsfn_abort);
    c->tsfn = NULL;
  }
}

static void fin_thr(napi_env env, void *data, void *hint) {
  cthread *c = (cthread *)data;
  (void)hint;
  if (c->running) {
    napi_remove_env_cleanup_hook(env, cthread_cleanup_hook, c);
    cthread_end(c);
  }
  cthread_release(c);
  if (c->tref != NULL) napi_delete_reference(env, c->tref);
  if (c->wref != NULL) napi_delete_reference(env, c->wref);
  uv_cond_destroy(&c->cv);
  uv_mutex_destroy(&c->mu);
  c->magic = 0;
  free(c);
}

/* threadNew(table, cb, words) -> a crypto thread running batches on `table`; words: an Int32Array
   of at least threadWords over a SharedArrayBuffer; cb(id) ends a threadWait */
static napi_value js_thread_new(napi_env env, napi_callback_info info) {
  size_t argc = 3, wlen = 0;
  napi_value argv[3], out, name;
  cthread *c;
  slot_table *t;
  void *wp = NULL;
  napi_typedarray_type wt;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uv_once(&g_thr_once, cthreads_init);
  napi_valuetype tt = napi_undefined;
  if (argc < 3 || napi_typeof(env, argv[0], &tt) != napi_ok) return throw_type(env, "threadNew: a slot table, a callback and an Int32Array");
  /* null: a thread for writes only (threadWrite) */
  if (tt == napi_null) t = NULL;
  else if ((t = (slot_table *)get_ext(env, argv[0], MAGIC_TAB)) == NULL) return throw_type(env, "threadNew: a slot table, a callback and an Int32Array");
  if (napi_get_typedarray_info(env, argv[2], &wt, &wlen, &wp, NULL, NULL) != napi_ok || wt != napi_int32_array || wlen < TW_WORDS || wp == NULL)
    return throw_type(env, "threadNew: words must be an Int32Array of threadWords");
  c = (cthread *)calloc(1, sizeof(*c));
  if (!c) return throw_range(env, "threadNew: out of memory");
  if (uv_mutex_init(&c->mu) != 0) { free(c); return throw_range(env, "threadNew: no mutex"); }
  if (uv_cond_init(&c->cv) != 0) { uv_mutex_destroy(&c->mu); free(c); return throw_range(env, "threadNew: no condition variable"); }
  c->magic = MAGIC_THR;
  c->t = t;
  c->words = (int32_t *)wp;
  if (napi_create_external(env, c, fin_thr, NULL, &out) != napi_ok) {
    uv_cond_destroy(&c->cv); uv_mutex_destroy(&c->mu); free(c);
    return NULL;
  }
  if (t != NULL) CHECK(napi_create_reference(env, argv[0], 1, &c->tref));
  CHECK(napi_create_reference(env, argv[2], 1, &c->wref));
  CHECK(napi_create_string_utf8(env, "ipsecov2 crypto thread", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, c, cthread_call_js, &c->tsfn));
  /* the event loop is kept alive only while the main thread waits (threadWait refs, the callback unrefs) */
  CHECK(napi_unref_threadsafe_function(env, c->tsfn));
  uv_mutex_lock(&g_thr_mu);
  if (g_thr_count == (int)(sizeof(g_thr_list) / sizeof(g_thr_list[0]))) {
    uv_mutex_unlock(&g_thr_mu);
    return throw_range(env, "threadNew: too many crypto threads");
  }
  if (uv_thread_create(&c->th, cthread_main, c) != 0) {
    uv_mutex_unlock(&g_thr_mu);
    return throw_range(env, "threadNew: could not start a thread");
  }
  c->running = 1;
  g_thr_list[g_thr_count++] = c;
  uv_mutex_unlock(&g_thr_mu);
  CHECK(napi_add_env_cleanup_hook(env, cthread_cleanup_hook, c));
  return out;
}

/* Queue a job for the thread and wake it. */
static void cthread_enqueue(cthread *c, tjob *j) {
  uv_mutex_lock(&c->mu);
  if (c->tail) c->tail->next = j;
  else c->head = j;
  c->tail = j;
  uv_cond_signal(&c->cv);
  uv_mutex_unlock(&c->mu);
}

/* threadRun(thread, id, data, meta, n, srcs?): queue a batch. The caller keeps the buffers alive and
   does not touch them until the batch is done. */
static napi_value js_thread_run(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  cthread *c;
  tjob *j;
  int32_t id;
  const char *err;
  int range;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || (c = (cthread *)get_ext(env, argv[0], MAGIC_THR)) == NULL || !c->running || c->t == NULL || !get_i32(env, argv[1], &id))
    return throw_type(env, "threadRun: an open crypto thread and a batch id");
  j = (tjob *)calloc(1, sizeof(*j));
  if (!j) return throw_range(env, "threadRun: out of memory");
  if ((err = get_batch_args(env, argv + 2, argc - 2, &j->b, &range)) != NULL) {
    free(j);
    return throw_batch_args(env, "threadRun", err, range);
  }
  j->id = id;
  /* the batch's words (run_shared), zeroed before the thread can see the batch (the queue's lock
     orders them). The ring slot's last batch is done: JS has at most TW_RING batches unfinished;
     one the main thread finished may still sit in the queue, and then takes nothing */
  {
    int k = id & (TW_RING - 1);
    __atomic_store_n(&c->words[TW_FIN + k], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->words[TW_DEFERRED + k], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->words[TW_MICROS + k], 0, __ATOMIC_RELAXED);
    __atomic_store_n(claim_word(c, k), (int64_t)id << 32, __ATOMIC_RELEASE);
  }
  cthread_enqueue(c, j);
  return NULL;
}

/* threadHelp(thread, id, table, data, meta, n, srcs?) -> jobs run: the main thread runs the jobs
   of queued batch `id` (the same data, meta, n and srcs as its threadRun) that the crypto thread
   has not taken yet, on `table` (the main thread's own: a table is used by one thread at a time),
   instead of waiting for them. Once the batch is done, its words say so as if the thread had
   finished it (no callback comes); else the thread is still running the last jobs it took, and
   threadWait waits for it as usual. */
static napi_value js_thread_help(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], out;
  cthread *c;
  slot_table *t;
  batch_args b;
  int32_t id, ran = 0;
  int k;
  const char *err;
  int range;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6 || (c = (cthread *)get_ext(env, argv[0], MAGIC_THR)) == NULL || !c->running || c->t == NULL || !get_i32(env, argv[1], &id) || id <= 0)
    return throw_type(env, "threadHelp: an open crypto thread and a batch id");
  if ((t = (slot_table *)get_ext(env, argv[2], MAGIC_TAB)) == NULL || t == c->t)
    return throw_type(env, "threadHelp: a slot table of the main thread's own");
  if ((err = get_batch_args(env, argv + 3, argc - 3, &b, &range)) != NULL) return throw_batch_args(env, "threadHelp", err, range);
  k = id & (TW_RING - 1);
  /* finished by this call, or by the thread since (which may not have said so yet): said now;
     nothing for an id whose ring slot holds another batch (not queued, or long done) */
  if (__atomic_load_n(&c->words[TW_DONE + k], __ATOMIC_SEQ_CST) != id &&
      (int32_t)(__atomic_load_n(claim_word(c, k), __ATOMIC_ACQUIRE) >> 32) == id &&
      (run_shared(c, t, &b, id, &ran) || __atomic_load_n(&c->words[TW_FIN + k], __ATOMIC_ACQUIRE) == (int32_t)b.n))
    __atomic_store_n(&c->words[TW_DONE + k], id, __ATOMIC_SEQ_CST);
  CHECK(napi_create_int32(env, ran, &out));
  return out;
}

/* Queue write job j (id, fd, wlen bytes from wp, or its iov, at pos) for thread c. */
static void queue_write(cthread *c, tjob *j, int32_t id, int32_t fd, uint8_t *wp, size_t wlen, int64_t pos) {
  j->id = id;
  j->fd = fd;
  j->wp = wp;
  j->wlen = wlen;
  j->wpos = pos;
  cthread_enqueue(c, j);
}

/* threadWrite(thread, id, fd, bytes, position): queue a pwrite of all of `bytes` (a Uint8Array,
   not empty) at `position` of `fd`. Done like a batch: words[TW_DONE + k] = id, with the errno of
   a failed write (0: written) at words[TW_DEFERRED + k], and the first failure's errno kept at
   words[TW_WERR]. Queued with increasing ids, writes complete in that order, so write `id` is done
   once words[TW_DONE + k] >= id, even after the ring wrapped. The caller keeps the bytes alive and
   untouched, and the fd open, until it is done. */
static napi_value js_thread_write(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  cthread *c;
  tjob *j;
  int32_t id, fd;
  int64_t pos;
  uint8_t *p = NULL;
  size_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || (c = (cthread *)get_ext(env, argv[0], MAGIC_THR)) == NULL || !c->running || !get_i32(env, argv[1], &id) || !get_i32(env, argv[2], &fd) || fd < 0 ||
      !get_bytes(env, argv[3], &p, &n) || p == NULL || n == 0 || !get_i64(env, argv[4], &pos) || pos < 0)
    return throw_type(env, "threadWrite: an open thread, an id, an fd, bytes (not empty) and a position");
  j = (tjob *)calloc(1, sizeof(*j));
  if (!j) return throw_range(env, "threadWrite: out of memory");
  queue_write(c, j, id, fd, p, n, pos);
  return NULL;
}

/* threadWritev(thread, id, fd, bytes, iov, n, position, aux?): as threadWrite, of the n pieces
   bytes[iov[2i], iov[2i] + iov[2i+1]) one after another (pwritev: no copy into one buffer); a
   piece whose offset is -(k + 1) is aux[k, k + iov[2i+1]). iov is an Int32Array; every piece lies
   inside its buffer and is not empty. The caller keeps both buffers alive and untouched until
   the write is done. */
static napi_value js_thread_writev(napi_env env, napi_callback_info info) {
  size_t argc = 8, ilen = 0, alen = 0;
  napi_value argv[8];
  uint8_t *ap = NULL;
  cthread *c;
  tjob *j;
  int32_t id, fd, n, i;
  int64_t pos;
  uint8_t *p = NULL;
  size_t blen = 0, total = 0;
  void *ip = NULL;
  napi_typedarray_type it;
  const int32_t *iv;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7 || (c = (cthread *)get_ext(env, argv[0], MAGIC_THR)) == NULL || !c->running || !get_i32(env, argv[1], &id) || !get_i32(env, argv[2], &fd) || fd < 0 ||
      !get_bytes(env, argv[3], &p, &blen) || p == NULL || napi_get_typedarray_info(env, argv[4], &it, &ilen, &ip, NULL, NULL) != napi_ok || it != napi_int32_array ||
      !get_i32(env, argv[5], &n) || n <= 0 || (size_t)n * 2 > ilen || !get_i64(env, argv[6], &pos) || pos < 0)
    return throw_type(env, "threadWritev: an open thread, an id, an fd, bytes, an Int32Array of pieces, their count (> 0) and a position");
  if (argc >= 8 && !is_nullish(env, argv[7]) && !get_bytes(env, argv[7], &ap, &alen)) return throw_type(env, "threadWritev: aux must be bytes");
  iv = (const int32_t *)ip;
  for (i = 0; i < n; i++) {
    int64_t o = iv[2 * i] >= 0 ? iv[2 * i] : -(int64_t)iv[2 * i] - 1;
    if (iv[2 * i + 1] <= 0 || (size_t)o + (size_t)iv[2 * i + 1] > (iv[2 * i] >= 0 ? blen : alen)) return throw_range(env, "threadWritev: a piece outside its buffer");
  }
  j = (tjob *)calloc(1, sizeof(*j) + (size_t)n * sizeof(struct iovec));
  if (!j) return throw_range(env, "threadWritev: out of memory");
  j->iov = (struct iovec *)(j + 1);
  for (i = 0; i < n; i++) {
    j->iov[i].iov_base = iv[2 * i] >= 0 ? p + iv[2 * i] : ap + (-(int64_t)iv[2 * i] - 1);
    j->iov[i].iov_len = (size_t)iv[2 * i + 1];
    total += (size_t)iv[2 * i + 1];
  }
  j->iovcnt = n;
  queue_write(c, j, id, fd, p, total, pos);
  return NULL;
}

/* threadWait(thread, id): the main thread has stored id in words[0] and found the batch not done:
   cb(id) comes once it is, and keeps the event loop alive until then. */
static napi_value js_thread_wait(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  cthread *c;
  int32_t id;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || (c = (cthread *)get_ext(env, argv[0], MAGIC_THR)) == NULL || !c->running || !get_i32(env, argv[1], &id) || id <= 0)
    return throw_type(env, "threadWait: an open thread and a batch id");
  c->waitingId = id;
  napi_ref_threadsafe_function(env, c->tsfn);
  return NULL;
}

/* threadClose(thread): stop the thread (queued batches are dropped, never called back) and join it */
static napi_value js_thread_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  cthread *c;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (c = (cthread *)get_ext(env, argv[0], MAGIC_THR)) == NULL) return throw_type(env, "threadClose: a thread");
  if (c->running) {
    napi_remove_env_cleanup_hook(env, cthread_cleanup_hook, c);
    cthread_end(c);
  }
  cthread_release(c);
  return NULL;
}

/* A plain ArrayBuffer over the memory of a SharedArrayBuffer (given as a Uint8Array over all of
   it). The reader keeps its input chunks in shared memory so crypto workers can read them, and
   uses this alias on its own thread: V8 copies to and from shared memory with relaxed atomics
   (~850 ns against ~100 ns for 1400 bytes here), which made every frame copied in JS
   (pass-through output, AH jobs) slower. The alias holds no reference: the caller keeps the shared
   memory alive as long as the alias (src/capture/shared-memory.ts: a WeakMap from alias to
   SharedArrayBuffer, so both go in the same collection; a reference from a finalizer kept each
   chunk one collection longer, and a stream of fresh chunks grew RSS by 250 MB). */
static napi_value js_alias_shared(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  uint8_t *p = NULL;
  size_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_bytes(env, argv[0], &p, &n) || !p || !n) return throw_type(env, "aliasShared: a Uint8Array over shared memory expected");
  CHECK(napi_create_external_arraybuffer(env, p, n, NULL, NULL, &out));
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* rx output: pcapng EPBs and OOB JSON lines of a run of common frames, in one call.           */
/*                                                                                            */
/* The format knowledge stays in JS (src/offload/oob-encode.ts, src/pipeline/rx-emit.ts): the   */
/* OOB text is made of pieces JS encodes once and registers here by number, and each frame's   */
/* output header (L2 + IP, lengths and checksum already fixed) is copied by JS into an arena.  */
/* Per frame this writes the EPB fields, concatenates header + payload + pieces and prints the */
/* integers. One N-API call costs ~150 ns here, as much as JS takes for a line, so this only   */
/* pays per run of frames. test/rx-emit.test.ts checks the bytes against the JS writers.       */

#define MAGIC_TXT 0x54585431u
#define TXT_MAX_PIECES 65536
#define TXT_MAX_PIECE 65536

typedef struct {
  uint8_t *p;
  uint32_t n;
} txt_piece;

typedef struct {
  const txt_piece *saJson, *tail, *saComment, *replay;
  uint32_t commentLen, epbLen, lineLen;
  int32_t at; /* in place: where in data the EPB goes, or -1: in epbBuf */
} emit_sizes;

typedef struct {
  uint32_t magic;
  uint32_t count;
  txt_piece *pc;
  /* emitBatch's per-frame sizes from its checking pass, kept for its writing pass */
  emit_sizes *zs;
  uint32_t zcap;
} txt_st;

static void txt_free(txt_st *t) {
  uint32_t i;
  if (!t) return;
  for (i = 0; i < t->count; i++) free(t->pc[i].p);
  free(t->pc);
  free(t->zs);
  free(t);
}

static void fin_txt(napi_env env, void *data, void *hint) { (void)env; (void)hint; txt_free((txt_st *)data); }

/* "00".."99": two digits per division when formatting numbers (the emit loop's hot spot). */
static const char DIGITS2[201] =
  "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
  "8081828384858687888990919293949596979899";

static uint32_t txt_u32_len(uint32_t v) {
  if (v < 100000) return v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : 5;
  return v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
}

/* The n lowest decimal digits of v, zero-padded, ending at end (written backwards). */
static void txt_digits(uint8_t *end, uint32_t v, uint32_t n) {
  while (n >= 2) {
    uint32_t r = v % 100;
    v /= 100;
    end -= 2;
    memcpy(end, DIGITS2 + 2 * r, 2);
    n -= 2;
  }
  if (n) *--end = (uint8_t)('0' + v % 10);
}

/* Decimal digits of v (as JS prints an integer); returns the end. */
static uint8_t *txt_u32(uint8_t *p, uint32_t v) {
  uint32_t n = txt_u32_len(v);
  txt_digits(p + n, v, n);
  return p + n;
}

static const txt_piece *txt_get(const txt_st *t, int32_t i) {
  return i >= 0 && (uint32_t)i < t->count && t->pc[i].p ? &t->pc[i] : NULL;
}

static napi_value js_txt_new(napi_env env, napi_callback_info info) {
  napi_value out;
  txt_st *t = (txt_st *)calloc(1, sizeof(*t));
  (void)info;
  if (!t) return throw_range(env, "textNew: out of memory");
  t->magic = MAGIC_TXT;
  if (napi_create_external(env, t, fin_txt, NULL, &out) != napi_ok) { txt_free(t); return NULL; }
  return out;
}

/* textPiece(t, index, bytes): keep a copy of bytes as piece `index` (replacing any old one) */
static napi_value js_txt_piece(napi_env env, napi_callback_info info) {
  size_t argc = 3, n;
  napi_value argv[3];
  txt_st *t;
  int32_t i;
  uint8_t *b, *copy;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "textPiece: 3 arguments expected");
  t = (txt_st *)get_ext(env, argv[0], MAGIC_TXT);
  if (!t || !get_i32(env, argv[1], &i) || !get_bytes(env, argv[2], &b, &n)) return throw_type(env, "textPiece: bad argument");
  if (i < 0 || i >= TXT_MAX_PIECES || n > TXT_MAX_PIECE) return throw_range(env, "textPiece: index or length out of range");
  if ((uint32_t)i >= t->count) {
    uint32_t c = (uint32_t)i + 64;
    txt_piece *np;
    if (c > TXT_MAX_PIECES) c = TXT_MAX_PIECES;
    np = (txt_piece *)realloc(t->pc, c * sizeof(*np));
    if (!np) return throw_range(env, "textPiece: out of memory");
    memset(np + t->count, 0, (c - t->count) * sizeof(*np));
    t->pc = np;
    t->count = c;
  }
  copy = (uint8_t *)malloc(n ? n : 1);
  if (!copy) return throw_range(env, "textPiece: out of memory");
  if (n) memcpy(copy, b, n);
  free(t->pc[i].p);
  t->pc[i].p = copy;
  t->pc[i].n = (uint32_t)n;
  return NULL;
}

/* Plan fields of one frame (src/pipeline/rx-emit.ts, P_*). */
enum {
  P_IF, P_TS_HI, P_TS_LO, P_CAP, P_ORIG, P_FRAME, P_FRAC, P_PRE_OFF, P_PRE_LEN, P_SA_JSON, P_SEQ, P_FLAGS,
  P_SEQ_HIGH, P_TAIL, P_SA_COMMENT, P_REPLAY, P_HDR_OFF, P_HDR_LEN, P_PAY_OFF, P_PAY_LEN, P_ROOM_LO, P_ROOM_HI,
  P_FIELDS
};
enum { F_SEQ_NULL = 1, F_SEQ_HIGH_NULL = 2, F_NO_COMMENT_SEQ = 4 };

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint8_t *put_piece(uint8_t *p, const txt_piece *x) {
  memcpy(p, x->p, x->n);
  return p + x->n;
}

static uint8_t *put_num(uint8_t *p, uint32_t v, int null) {
  if (null) {
    memcpy(p, "null", 4);
    return p + 4;
  }
  return txt_u32(p, v);
}

/* Check one frame's plan and work out its sizes; 0 when anything is out of range. */
static int emit_check(const txt_st *t, const int32_t *f, size_t alen, size_t dlen, int wantEpb, int wantLine, emit_sizes *z) {
  uint32_t cap = (uint32_t)f[P_CAP], flags = (uint32_t)f[P_FLAGS];
  if (f[P_HDR_OFF] < 0 || f[P_HDR_LEN] < 0 || f[P_PAY_OFF] < 0 || f[P_PAY_LEN] < 0 || f[P_PRE_OFF] < 0 || f[P_PRE_LEN] < 0) return 0;
  if ((size_t)f[P_HDR_OFF] + (size_t)f[P_HDR_LEN] > alen || (size_t)f[P_PRE_OFF] + (size_t)f[P_PRE_LEN] > alen) return 0;
  if ((size_t)f[P_PAY_OFF] + (size_t)f[P_PAY_LEN] > dlen) return 0;
  if ((uint64_t)f[P_HDR_LEN] + (uint64_t)f[P_PAY_LEN] != cap || cap > (1u << 30) || (uint32_t)f[P_ORIG] < cap) return 0;
  if (f[P_FRAC] < 0 || f[P_FRAC] > 999999999) return 0;
  z->commentLen = z->epbLen = z->lineLen = 0;
  if (wantEpb) {
    if (!(z->saComment = txt_get(t, f[P_SA_COMMENT])) || !(z->replay = txt_get(t, f[P_REPLAY]))) return 0;
    z->commentLen = z->saComment->n + z->replay->n;
    if (!(flags & F_NO_COMMENT_SEQ)) z->commentLen += (flags & F_SEQ_NULL) ? 4 : txt_u32_len((uint32_t)f[P_SEQ]);
    if (z->commentLen > 65535) return 0;
    z->epbLen = 28 + ((cap + 3) & ~3u) + 4 + ((z->commentLen + 3) & ~3u) + 4 + 4;
  }
  if (wantLine) {
    if (!(z->saJson = txt_get(t, f[P_SA_JSON])) || !(z->tail = txt_get(t, f[P_TAIL]))) return 0;
    z->lineLen = 9 + txt_u32_len((uint32_t)f[P_FRAME]) + 7 + (uint32_t)f[P_PRE_LEN] + 10 + z->saJson->n +
                 ((flags & F_SEQ_NULL) ? 4 : txt_u32_len((uint32_t)f[P_SEQ])) + 11 +
                 ((flags & F_SEQ_HIGH_NULL) ? 4 : txt_u32_len((uint32_t)f[P_SEQ_HIGH])) + z->tail->n;
  }
  return 1;
}

/* One frame's EPB (opt_comment, opt_endofopt) at p, as src/capture/pcapng.ts encodeEpbReserved. */
static uint8_t *emit_epb(uint8_t *p, const int32_t *f, const emit_sizes *z, const uint8_t *arena, const uint8_t *data) {
  uint8_t *q;
  uint32_t cap = (uint32_t)f[P_CAP], flags = (uint32_t)f[P_FLAGS];
  put_le32(p, 6);
  put_le32(p + 4, z->epbLen);
  put_le32(p + 8, (uint32_t)f[P_IF]);
  put_le32(p + 12, (uint32_t)f[P_TS_HI]);
  put_le32(p + 16, (uint32_t)f[P_TS_LO]);
  put_le32(p + 20, cap);
  put_le32(p + 24, (uint32_t)f[P_ORIG]);
  q = p + 28;
  memcpy(q, arena + f[P_HDR_OFF], (size_t)f[P_HDR_LEN]);
  /* built in place (emitBatch with iov): the payload is there already */
  if (q + f[P_HDR_LEN] != data + f[P_PAY_OFF]) memcpy(q + f[P_HDR_LEN], data + f[P_PAY_OFF], (size_t)f[P_PAY_LEN]);
  q += cap;
  while ((q - p) & 3) *q++ = 0;
  q[0] = 1; /* opt_comment */
  q[1] = 0;
  q[2] = (uint8_t)z->commentLen;
  q[3] = (uint8_t)(z->commentLen >> 8);
  q = put_piece(q + 4, z->saComment);
  if (!(flags & F_NO_COMMENT_SEQ)) q = put_num(q, (uint32_t)f[P_SEQ], flags & F_SEQ_NULL);
  q = put_piece(q, z->replay);
  while ((q - p) & 3) *q++ = 0;
  put_le32(q, 0); /* opt_endofopt */
  put_le32(q + 4, z->epbLen);
  return q + 8;
}

/* One frame's OOB line at p, as RxOobEncoder.writeLine. */
static uint8_t *emit_line(uint8_t *p, const int32_t *f, const emit_sizes *z, const uint8_t *arena) {
  uint32_t fr = (uint32_t)f[P_FRAC], flags = (uint32_t)f[P_FLAGS];
  memcpy(p, "{\"frame\":", 9);
  p = txt_u32(p + 9, (uint32_t)f[P_FRAME]);
  memcpy(p, ",\"ts\":\"", 7);
  p += 7;
  memcpy(p, arena + f[P_PRE_OFF], (size_t)f[P_PRE_LEN]);
  p += f[P_PRE_LEN];
  txt_digits(p + 9, fr, 9);
  p[9] = 'Z';
  p = put_piece(p + 10, z->saJson);
  p = put_num(p, (uint32_t)f[P_SEQ], flags & F_SEQ_NULL);
  memcpy(p, ",\"seqHigh\":", 11);
  p = put_num(p + 11, (uint32_t)f[P_SEQ_HIGH], flags & F_SEQ_HIGH_NULL);
  return put_piece(p, z->tail);
}

/*
 * emitBatch(t, plan: Int32Array, n, arena, data, epbBuf|null, epbOff, lineBuf|null, lineOff,
 *           ends: Int32Array(2), iov?: Int32Array(2n)) -> true, with ends = [epb end, line end];
 * false (nothing written) when a plan entry is out of range or the output does not fit: the
 * caller then writes those frames itself.
 *
 * In place (iov given; ends: Int32Array(5)): a frame's EPB is built in data around its payload,
 * from P_PAY_OFF - P_HDR_LEN - 28 on, when it fits data[P_ROOM_LO, P_ROOM_HI) (room the frame's
 * job left before and after its bytes) after the last EPB built in data; other frames' EPBs are
 * built one after another in epbBuf from epbOff on, as without iov. iov gets the pieces to write,
 * in order, as (offset, length) pairs: offset >= 0 in data, -(k + 1) for epbBuf[k] (consecutive
 * EPBs in epbBuf are one piece). ends = [the EPBs' total length, line end, epbBuf end, pieces,
 * EPBs built in data]. Those payloads are not copied: the EPBs go to the file from where they are
 * (threadWritev with epbBuf as its second buffer).
 */
static napi_value js_emit_batch(napi_env env, napi_callback_info info) {
  size_t argc = 11, alen, dlen, wlen = 0, llen = 0, plen, elen, ilen = 0;
  napi_value argv[11], out;
  int32_t *iov = NULL;
  void *ivp = NULL;
  napi_typedarray_type ivt;
  int64_t prevEnd = 0;
  uint64_t inData = 0;
  int32_t pieces = 0, built = 0;
  txt_st *t;
  int32_t n, wOff, lOff, i;
  uint8_t *arena, *data, *wbuf = NULL, *lbuf = NULL, *wp, *lp;
  void *pp = NULL, *ep = NULL;
  napi_typedarray_type pt, et;
  const int32_t *plan;
  uint64_t wNeed = 0, lNeed = 0;
  emit_sizes *zs;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 10) return throw_type(env, "emitBatch: 10 arguments expected");
  t = (txt_st *)get_ext(env, argv[0], MAGIC_TXT);
  if (!t || napi_get_typedarray_info(env, argv[1], &pt, &plen, &pp, NULL, NULL) != napi_ok || pt != napi_int32_array ||
      !get_i32(env, argv[2], &n) || !get_bytes(env, argv[3], &arena, &alen) || !get_bytes(env, argv[4], &data, &dlen) ||
      !get_i32(env, argv[6], &wOff) || !get_i32(env, argv[8], &lOff) ||
      napi_get_typedarray_info(env, argv[9], &et, &elen, &ep, NULL, NULL) != napi_ok || et != napi_int32_array || elen < 2)
    return throw_type(env, "emitBatch: bad argument");
  if (!is_nullish(env, argv[5]) && !get_bytes(env, argv[5], &wbuf, &wlen)) return throw_type(env, "emitBatch: bad EPB buffer");
  if (!is_nullish(env, argv[7]) && !get_bytes(env, argv[7], &lbuf, &llen)) return throw_type(env, "emitBatch: bad line buffer");
  plan = (const int32_t *)pp;
  if (n < 0 || (size_t)n * P_FIELDS > plen || wOff < 0 || lOff < 0) return throw_range(env, "emitBatch: bad count or offset");
  if (argc >= 11 && !is_nullish(env, argv[10])) {
    if (napi_get_typedarray_info(env, argv[10], &ivt, &ilen, &ivp, NULL, NULL) != napi_ok || ivt != napi_int32_array || ilen < (size_t)n * 2)
      return throw_type(env, "emitBatch: iov must be an Int32Array of 2 entries per frame");
    if (wbuf == NULL || elen < 5) return throw_type(env, "emitBatch: in place needs an EPB buffer and 5 ends");
    iov = (int32_t *)ivp;
  }
  if ((uint32_t)n > t->zcap) {
    emit_sizes *nz = (emit_sizes *)realloc(t->zs, (size_t)n * sizeof(*nz));
    if (!nz) return throw_range(env, "emitBatch: out of memory");
    t->zs = nz;
    t->zcap = (uint32_t)n;
  }
  zs = t->zs;
  /* pass 1: every entry valid and everything fits, else write nothing */
  for (i = 0; i < n; i++) {
    const int32_t *f = plan + (size_t)i * P_FIELDS;
    if (!emit_check(t, f, alen, dlen, wbuf != NULL, lbuf != NULL, &zs[i])) goto refuse;
    zs[i].at = -1;
    if (iov) {
      /* the block around the payload: inside the frame's room, after the last block there */
      int64_t at = (int64_t)f[P_PAY_OFF] - f[P_HDR_LEN] - 28;
      if (at >= prevEnd && at >= f[P_ROOM_LO] && f[P_ROOM_HI] >= 0 && (uint64_t)f[P_ROOM_HI] <= dlen && at + (int64_t)zs[i].epbLen <= f[P_ROOM_HI]) {
        zs[i].at = (int32_t)at;
        prevEnd = at + (int64_t)zs[i].epbLen;
        inData += zs[i].epbLen;
      }
    }
    wNeed += zs[i].epbLen;
    lNeed += zs[i].lineLen;
  }
  if ((uint64_t)wOff + (wNeed - inData) > wlen || (uint64_t)lOff + lNeed > llen || wNeed > 0x7fffffff) goto refuse;
  wp = wbuf ? wbuf + wOff : NULL;
  lp = lbuf ? lbuf + lOff : NULL;
  for (i = 0; i < n; i++) {
    const int32_t *f = plan + (size_t)i * P_FIELDS;
    if (zs[i].at >= 0) {
      emit_epb(data + zs[i].at, f, &zs[i], arena, data);
      iov[2 * pieces] = zs[i].at;
      iov[2 * pieces + 1] = (int32_t)zs[i].epbLen;
      pieces++;
      built++;
    } else if (wp) {
      int32_t k = (int32_t)(wp - wbuf);
      wp = emit_epb(wp, f, &zs[i], arena, data);
      /* EPBs in epbBuf are consecutive: one after the last piece there extends it */
      if (iov && pieces > 0 && iov[2 * pieces - 2] < 0) iov[2 * pieces - 1] += (int32_t)zs[i].epbLen;
      else if (iov) {
        iov[2 * pieces] = -(k + 1);
        iov[2 * pieces + 1] = (int32_t)zs[i].epbLen;
        pieces++;
      }
    }
    if (lp) lp = emit_line(lp, f, &zs[i], arena);
  }
  ((int32_t *)ep)[0] = iov ? (int32_t)wNeed : wp ? (int32_t)(wp - wbuf) : wOff;
  ((int32_t *)ep)[1] = lp ? (int32_t)(lp - lbuf) : lOff;
  if (iov) {
    ((int32_t *)ep)[2] = (int32_t)(wp - wbuf);
    ((int32_t *)ep)[3] = pieces;
    ((int32_t *)ep)[4] = built;
  }
  CHECK(napi_get_boolean(env, true, &out));
  return out;
refuse:
  CHECK(napi_get_boolean(env, false, &out));
  return out;
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  CHECK(napi_create_string_utf8(env, OpenSSL_version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &out));
  return out;
}

/* setDirect(on?) -> previous: provider calls (true) or EVP (false) for contexts made from now on;
   without an argument it only reports. */
static napi_value js_set_direct(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  bool on;
  int prev = direct_wanted();
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1 && !is_nullish(env, argv[0])) {
    if (napi_get_value_bool(env, argv[0], &on) != napi_ok) return throw_type(env, "setDirect: a boolean");
    g_direct = on ? 1 : 0;
  }
  CHECK(napi_get_boolean(env, prev != 0, &out));
  return out;
}

/* madeCounts() -> [contexts made with direct provider calls, through EVP] */
static napi_value js_made_counts(napi_env env, napi_callback_info info) {
  napi_value out, v;
  (void)info;
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_create_int64(env, __atomic_load_n(&g_made_direct, __ATOMIC_RELAXED), &v));
  CHECK(napi_set_element(env, out, 0, v));
  CHECK(napi_create_int64(env, __atomic_load_n(&g_made_evp, __ATOMIC_RELAXED), &v));
  CHECK(napi_set_element(env, out, 1, v));
  return out;
}

/*
 * threadBatch(tid) -> true when thread `tid` (a thread of this process: the caller lists
 * /proc/self/task) is now SCHED_BATCH. Only a SCHED_OTHER thread is changed (real-time and idle
 * ones are left alone); false off Linux or when the kernel refuses.
 */
static napi_value js_thread_batch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t tid;
  int ok = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_i32(env, argv[0], &tid) || tid <= 0) return throw_type(env, "threadBatch: a thread id");
#ifdef __linux__
  {
    struct sched_param sp;
    int pol = sched_getscheduler((pid_t)tid);
    memset(&sp, 0, sizeof(sp));
    if (pol == SCHED_BATCH) ok = 1;
    else if (pol == SCHED_OTHER) ok = sched_setscheduler((pid_t)tid, SCHED_BATCH, &sp) == 0;
  }
#endif
  CHECK(napi_get_boolean(env, ok != 0, &out));
  return out;
}

/*
 * heapHuge(reserve): see src/pipeline/heap.ts for why. glibc on Linux only; once per process.
 *   1. Freed memory stays in the heap for the next allocation (M_TRIM_THRESHOLD 256 MiB) and
 *      buffers under 32 MiB come from the heap, not from an mmap() each, which free() would unmap
 *      (M_MMAP_THRESHOLD; a fixed threshold instead of glibc's adaptive one).
 *   2. The heap grows 64 MiB at a time (M_TOP_PAD): one allocation of `reserve` bytes, freed at
 *      once, makes it grow now by about reserve + 64 MiB of address space (no memory yet), by brk
 *      or, where something is mapped just past the heap, by an mmap.
 *   3. The 2 MiB-aligned part of that new space (from the allocation to the end of its mapping, at
 *      most reserve + 64 MiB) gets MADV_HUGEPAGE: its first touches fault 2 MiB at a time, not
 *      4 KiB (where the kernel's transparent huge pages are "always" or "madvise"; under "never"
 *      the advice changes nothing).
 * Returns the bytes advised, 0 on a second call or when none were, -errno if madvise refused;
 * null elsewhere (nothing done).
 */
#if defined(__linux__) && defined(__GLIBC__)
/* The end of the mapping that holds addr (/proc/self/maps), or 0. */
static uintptr_t mapping_end(uintptr_t addr) {
  char line[512];
  uintptr_t end = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) return 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi) {
      end = (uintptr_t)hi;
      break;
    }
  }
  fclose(f);
  return end;
}
#endif

static napi_value js_heap_huge(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t reserve;
  double r = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_i32(env, argv[0], &reserve) || reserve <= 0 || reserve > (16 << 20)) return throw_type(env, "heapHuge: a size up to 16 MiB");
#if defined(__linux__) && defined(__GLIBC__)
  {
    static int done = 0;
    const uintptr_t huge = (uintptr_t)2 << 20, pad = (uintptr_t)64 << 20;
    if (!done) {
      done = 1;
      mallopt(M_MMAP_THRESHOLD, 32 << 20);
      mallopt(M_TRIM_THRESHOLD, 256 << 20);
      mallopt(M_TOP_PAD, (int)pad);
      void *p = malloc((size_t)reserve);
      if (p != NULL) {
        uintptr_t end = mapping_end((uintptr_t)p);
        if (end > (uintptr_t)p + reserve + pad) end = (uintptr_t)p + reserve + pad;
        uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = end & ~(huge - 1);
        if (b > a) r = madvise((void *)a, b - a, MADV_HUGEPAGE) == 0 ? (double)(b - a) : -errno;
        free(p);
      }
    }
  }
  CHECK(napi_create_double(env, r, &out));
#else
  (void)reserve;
  (void)r;
  CHECK(napi_get_null(env, &out));
#endif
  return out;
}

/*
 * pipeSize(fd, bytes) -> the pipe's size after asking for `bytes` (Linux F_SETPIPE_SZ, rounded up
 * by the kernel), or -errno: -EPERM above the user's limit (/proc/sys/fs/pipe-max-size), -EBADF
 * for a descriptor that is not a pipe, -ENOSYS off Linux.
 */
static napi_value js_pipe_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t fd, bytes, r;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_i32(env, argv[0], &fd) || fd < 0 || !get_i32(env, argv[1], &bytes) || bytes <= 0) return throw_type(env, "pipeSize: a descriptor and a size");
#ifdef __linux__
  r = fcntl(fd, F_SETPIPE_SZ, bytes);
  if (r < 0) r = -errno;
#else
  (void)fd;
  (void)bytes;
  r = -ENOSYS;
#endif
  CHECK(napi_create_int32(env, r, &out));
  return out;
}

/*
 * soleOpener(fd) -> 1 when no other open file description refers to the file `fd` is open on (a
 * write lease could be placed on it: taken and released at once), 0 when another one does
 * (EAGAIN: another process, or this one, has it open, mapped or running), -errno when leases are
 * refused (EACCES/EPERM: not the owner and no CAP_LEASE; EINVAL: a filesystem without them),
 * -ENOSYS off Linux. `fd` must be open for writing. While the lease is held, another open() of
 * the file would break it with a signal to this process: it is set to SIGURG (ignored by
 * default), not SIGIO, whose default action would end the process.
 */
static napi_value js_sole_opener(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t fd, r;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_i32(env, argv[0], &fd) || fd < 0) return throw_type(env, "soleOpener: a descriptor");
#ifdef __linux__
  if (fcntl(fd, F_SETSIG, SIGURG) != 0) r = -errno;
  else if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
    (void)fcntl(fd, F_SETLEASE, F_UNLCK);
    r = 1;
  } else r = (errno == EAGAIN || errno == EBUSY) ? 0 : -errno;
#else
  (void)fd;
  r = -ENOSYS;
#endif
  CHECK(napi_create_int32(env, r, &out));
  return out;
}

/*
 * readable(fd) -> 1 when a read of `fd` would return at once (bytes, the end of the input, an
 * error), 0 when it would wait, -errno when poll() fails; null off Linux. The reader of a pipe
 * on standard input asks before each read, so that no read waits in libuv's thread pool (one
 * that does keeps the process from exiting until the pipe's writer writes or closes).
 */
static napi_value js_readable(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t fd, r;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_i32(env, argv[0], &fd) || fd < 0) return throw_type(env, "readable: a descriptor");
#ifdef __linux__
  {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    r = poll(&p, 1, 0);
    r = r < 0 ? -errno : r > 0 ? 1 : 0;
  }
  CHECK(napi_create_int32(env, r, &out));
#else
  (void)fd;
  (void)r;
  CHECK(napi_get_null(env, &out));
#endif
  return out;
}

/*
 * Readiness watcher (FdSource, src/capture/input.ts). A read of a quiet pipe issued into libuv's
 * thread pool cannot be taken back: it keeps the process alive until the writer writes or closes.
 * So the reader asks readable() first and, when the answer is no, waits here: an epoll watch on
 * the event loop, which can be stopped at any time. uv_poll_init makes the descriptor
 * non-blocking (FdSource retries a read that finds nothing: EAGAIN).
 */
typedef struct {
  uv_poll_t h;
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  int closed;   /* waitClose was called: uv_close is under way or done */
  int released; /* one of the two owners let go: the handle (closed by libuv) or the external (collected) */
} fd_wait;

/* The memory has two owners, libuv's closed handle and the JS external: freed when both let go. */
static void fd_wait_release(fd_wait *w) {
  if (w->released) free(w);
  else w->released = 1;
}

static void fd_wait_freed(uv_handle_t *h) {
  fd_wait_release((fd_wait *)h->data);
}

/* The external was collected: a watcher never closed is closed now (it was not waiting: a started
 * one is reachable from FdSource). */
static void fd_wait_finalize(napi_env env, void *data, void *hint) {
  fd_wait *w = (fd_wait *)data;
  (void)hint;
  if (!w->closed) {
    w->closed = 1;
    uv_poll_stop(&w->h);
    napi_delete_reference(env, w->cb);
    napi_async_destroy(env, w->actx);
    uv_close((uv_handle_t *)&w->h, fd_wait_freed);
  }
  fd_wait_release(w);
}

static void fd_wait_event(uv_poll_t *h, int status, int events) {
  fd_wait *w = (fd_wait *)h->data;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value cb, recv, arg, err;
  (void)events;
  uv_poll_stop(h); /* once per start: the reader reads, then starts it again if it must wait */
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  /* napi_make_callback wants an object as `this`: the global one */
  if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && cb != NULL && napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, status, &arg) == napi_ok &&
      napi_make_callback(env, w->actx, recv, cb, 1, &arg, NULL) == napi_pending_exception &&
      napi_get_and_clear_last_exception(env, &err) == napi_ok) {
    napi_fatal_exception(env, err); /* as for any callback: 'uncaughtException' */
  }
  napi_close_handle_scope(env, scope);
}

static fd_wait *get_wait(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) return NULL;
  return ((fd_wait *)p)->closed ? NULL : (fd_wait *)p;
}

static napi_value js_wait_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, name;
  napi_valuetype t;
  int32_t fd;
  uv_loop_t *loop;
  fd_wait *w;
  int r;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_i32(env, argv[0], &fd) || fd < 0 || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    return throw_type(env, "waitNew: a descriptor and a function");
  }
  CHECK(napi_get_uv_event_loop(env, &loop));
  w = (fd_wait *)calloc(1, sizeof(*w));
  if (w == NULL) {
    CHECK(napi_create_int32(env, -ENOMEM, &out));
    return out;
  }
  r = uv_poll_init(loop, &w->h, fd);
  if (r != 0) {
    free(w);
    CHECK(napi_create_int32(env, r, &out));
    return out;
  }
  w->h.data = w;
  w->env = env;
  if (napi_create_reference(env, argv[1], 1, &w->cb) != napi_ok || napi_create_string_utf8(env, "ipsecov2.fdWait", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->actx) != napi_ok || napi_create_external(env, w, fd_wait_finalize, NULL, &out) != napi_ok) {
    if (w->cb != NULL) napi_delete_reference(env, w->cb);
    w->closed = 1;
    w->released = 1; /* no external owns it */
    uv_close((uv_handle_t *)&w->h, fd_wait_freed);
    return NULL;
  }
  return out;
}

static napi_value js_wait_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  fd_wait *w;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (w = get_wait(env, argv[0])) == NULL) return throw_type(env, "waitStart: an open watcher");
  CHECK(napi_create_int32(env, uv_poll_start(&w->h, UV_READABLE | UV_DISCONNECT, fd_wait_event), &out));
  return out;
}

static napi_value js_wait_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  fd_wait *w;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (w = get_wait(env, argv[0])) == NULL) return throw_type(env, "waitClose: an open watcher");
  w->closed = 1;
  uv_poll_stop(&w->h);
  napi_delete_reference(env, w->cb);
  napi_async_destroy(env, w->actx);
  uv_close((uv_handle_t *)&w->h, fd_wait_freed); /* freed once the loop has closed it and the external is collected */
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"info", NULL, js_info, NULL, NULL, NULL, napi_enumerable, NULL},
    {"espNew", NULL, js_esp_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"espOpen", NULL, js_esp_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"espSeal", NULL, js_esp_seal, NULL, NULL, NULL, napi_enumerable, NULL},
    {"ahNew", NULL, js_ah_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"ahMac", NULL, js_ah_mac, NULL, NULL, NULL, napi_enumerable, NULL},
    {"tableNew", NULL, js_table_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"tableSet", NULL, js_table_set, NULL, NULL, NULL, napi_enumerable, NULL},
    {"runBatch", NULL, js_run_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setDirect", NULL, js_set_direct, NULL, NULL, NULL, napi_enumerable, NULL},
    {"madeCounts", NULL, js_made_counts, NULL, NULL, NULL, napi_enumerable, NULL},
    {"textNew", NULL, js_txt_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"textPiece", NULL, js_txt_piece, NULL, NULL, NULL, napi_enumerable, NULL},
    {"emitBatch", NULL, js_emit_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"aliasShared", NULL, js_alias_shared, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadBatch", NULL, js_thread_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pipeSize", NULL, js_pipe_size, NULL, NULL, NULL, napi_enumerable, NULL},
    {"soleOpener", NULL, js_sole_opener, NULL, NULL, NULL, napi_enumerable, NULL},
    {"readable", NULL, js_readable, NULL, NULL, NULL, napi_enumerable, NULL},
    {"waitNew", NULL, js_wait_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"waitStart", NULL, js_wait_start, NULL, NULL, NULL, napi_enumerable, NULL},
    {"waitClose", NULL, js_wait_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"heapHuge", NULL, js_heap_huge, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadNew", NULL, js_thread_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadRun", NULL, js_thread_run, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadHelp", NULL, js_thread_help, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadClose", NULL, js_thread_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadWait", NULL, js_thread_wait, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadWrite", NULL, js_thread_write, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadWritev", NULL, js_thread_writev, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_value abi;
  if (OpenSSL_version_num() >> 28 != 3) { /* built against OpenSSL 3 headers: refuse anything else */
    napi_throw_error(env, NULL, "ipsecov2_native: node's OpenSSL is not 3.x");
    return NULL;
  }
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  if (napi_create_uint32(env, ABI_VERSION, &abi) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "abi", abi) != napi_ok) return NULL;
  if (napi_create_uint32(env, TW_WORDS, &abi) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "threadWords", abi) != napi_ok) return NULL;
  return exports;
}
