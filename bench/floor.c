/*
 * The bench's floor: the least work that turns the bench's AES-GCM captures into the outputs
 * `ipsecov2 rx --any-direction -w OUT.pcapng --oob OUT.jsonl` writes for them, byte for byte
 * (the bench compares them). It knows one SA and one frame shape (Ethernet, IPv4 without options,
 * ESP tunnel mode with an IPv4 inner datagram, every ICV good, sequence numbers in order) and
 * stops at anything else: it models nothing. Its time is what this machine's cores, OpenSSL and
 * kernel need for this I/O and this crypto without any of the tool's rules, one core working and
 * one writing: a floor for any implementation built this way (the bench also runs two at once
 * on two halves of a capture, an ideal split of the same work).
 *
 * Threads as in the tool's addon: the main thread reads, parses, decrypts (OpenSSL EVP, one
 * context re-keyed per frame with its nonce only) and formats; one thread per output file writes.
 *
 *   floor IN.pcap OUT.pcapng OUT.jsonl KEYHEX(16 bytes + 4-byte salt) SPI SA-NAME
 *
 * Prints one line: frames, wall seconds, user and system CPU seconds, peak RSS. Anything it does
 * not expect (another frame shape, SPI or link type, an ICV that does not verify, a sequence
 * number out of order, a record cut short) ends it with exit status 2 and a message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)
#define OUTBUF (4 << 20)
#define NBUF 4

static void die(const char *m) { fprintf(stderr, "floor: %s\n", m); exit(2); }

/* A file written by a thread of its own from a ring of NBUF buffers. */
typedef struct {
  int fd;
  unsigned char *buf[NBUF];
  size_t len[NBUF];
  int head, tail, count, done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
  unsigned char *cur;
  size_t at;
} Out;

static void *writer(void *p) {
  Out *o = p;
  for (;;) {
    pthread_mutex_lock(&o->mu);
    while (o->count == 0 && !o->done) pthread_cond_wait(&o->cv, &o->mu);
    if (o->count == 0) { pthread_mutex_unlock(&o->mu); return NULL; }
    int i = o->tail;
    pthread_mutex_unlock(&o->mu);
    size_t n = o->len[i], w = 0;
    while (w < n) {
      ssize_t r = write(o->fd, o->buf[i] + w, n - w);
      if (r < 0) { if (errno == EINTR) continue; die("write failed"); }
      w += (size_t)r;
    }
    pthread_mutex_lock(&o->mu);
    o->tail = (o->tail + 1) % NBUF;
    o->count--;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
  }
}

static void out_open(Out *o, const char *path) {
  memset(o, 0, sizeof *o);
  o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (o->fd < 0) die("cannot open an output");
  for (int i = 0; i < NBUF; i++) if (!(o->buf[i] = malloc(OUTBUF))) die("out of memory");
  pthread_mutex_init(&o->mu, NULL);
  pthread_cond_init(&o->cv, NULL);
  pthread_create(&o->th, NULL, writer, o);
  o->cur = o->buf[0];
}

/* Hand the current buffer to the writer; take the next free one. */
static void out_flush(Out *o) {
  if (o->at == 0) return;
  pthread_mutex_lock(&o->mu);
  o->len[o->head] = o->at;
  o->head = (o->head + 1) % NBUF;
  o->count++;
  pthread_cond_broadcast(&o->cv);
  while (o->count == NBUF) pthread_cond_wait(&o->cv, &o->mu);
  o->cur = o->buf[o->head];
  o->at = 0;
  pthread_mutex_unlock(&o->mu);
}

/* Room for n more bytes. */
static unsigned char *out_room(Out *o, size_t n) {
  if (o->at + n > OUTBUF) out_flush(o);
  return o->cur + o->at;
}

static void out_close(Out *o) {
  out_flush(o);
  pthread_mutex_lock(&o->mu);
  o->done = 1;
  pthread_cond_broadcast(&o->cv);
  pthread_mutex_unlock(&o->mu);
  pthread_join(o->th, NULL);
  close(o->fd);
}

static inline void le32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Decimal digits of v at p; returns the end. */
static char *udec(char *p, uint64_t v) {
  char t[24];
  int n = 0;
  do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) *p++ = t[--n];
  return p;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 7) die("usage: floor IN.pcap OUT.pcapng OUT.jsonl KEYHEX SPI SA-NAME");
  double t0 = now();
  unsigned char key[20];
  if (strlen(argv[4]) != 40) die("the key must be 20 bytes (16 + salt) in hex");
  for (int i = 0; i < 20; i++) { unsigned v; sscanf(argv[4] + 2 * i, "%2x", &v); key[i] = (unsigned char)v; }
  uint32_t spi = (uint32_t)strtoul(argv[5], NULL, 0);
  const char *sa = argv[6];
  int in = open(argv[1], O_RDONLY);
  if (in < 0) die("cannot open the input");
  Out cap, oob;
  out_open(&cap, argv[2]);
  out_open(&oob, argv[3]);

  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, NULL)) die("EVP init");
  if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL)) die("EVP ivlen");
  unsigned char nonce[12];
  memcpy(nonce, key + 16, 4);

  unsigned char *chunk = malloc(CHUNK + 65536);
  size_t have = 0, pos = 0;
  int eof = 0, first = 1;
  uint64_t frame = 0, top = 0;
  /* the line's text after the fields that change */
  char comment_tail[256], line_mid[256];
  snprintf(comment_tail, sizeof comment_tail, " sa=%s handle=1 spi=0x%08x seq=", sa, spi);
  snprintf(line_mid, sizeof line_mid, "\",\"path\":\"rx\",\"handle\":1,\"sa\":\"%s\",\"spi\":\"0x%08x\",\"seq\":", sa, spi);
  size_t tail_len = strlen(comment_tail), mid_len = strlen(line_mid);
  static const char line_end[] = ",\"seqHigh\":0,\"cryptoDone\":1,\"nextCryptoDone\":0,\"saDeleteReq\":0,\"cryptoStatus\":\"CRYPTO_SUCCESS\",\"cryptoStatusCode\":0,\"replay\":\"ok\",\"detail\":null}\n";
  static const char comment_head[] = "ipsecov2 rx: CRYPTO_SUCCESS cryptoDone=1 nextCryptoDone=0 saDeleteReq=0";
  int64_t date_sec = -1;
  char date[32];
  for (;;) {
    if (have - pos < 16 + 65536 && !eof) {
      memmove(chunk, chunk + pos, have - pos);
      have -= pos;
      pos = 0;
      while (have < CHUNK && !eof) {
        ssize_t r = read(in, chunk + have, CHUNK + 65536 - have);
        if (r < 0) { if (errno == EINTR) continue; die("read failed"); }
        if (r == 0) eof = 1;
        have += (size_t)r;
      }
    }
    if (first) {
      if (have < 24 || memcmp(chunk, "\xd4\xc3\xb2\xa1", 4) != 0) die("not a little-endian microsecond pcap");
      uint32_t link;
      memcpy(&link, chunk + 20, 4);
      if (link != 1) die("not Ethernet");
      /* the tool's section header and interface description */
      static const unsigned char shb[] = {0x0a,0x0d,0x0d,0x0a,0x2c,0,0,0,0x4d,0x3c,0x2b,0x1a,1,0,0,0,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,4,0,8,0,'i','p','s','e','c','o','v','2',0,0,0,0,0x2c,0,0,0};
      unsigned char idb[20] = {1,0,0,0,20,0,0,0,1,0,0,0};
      memcpy(idb + 12, chunk + 16, 4); /* snaplen */
      le32(idb + 16, 20);
      memcpy(out_room(&cap, 64), shb, sizeof shb);
      cap.at += sizeof shb;
      memcpy(out_room(&cap, 20), idb, 20);
      cap.at += 20;
      pos = 24;
      first = 0;
    }
    if (have - pos < 16) { if (have != pos) die("truncated record"); break; }
    const unsigned char *h = chunk + pos;
    uint32_t sec, usec, caplen, origlen;
    memcpy(&sec, h, 4); memcpy(&usec, h + 4, 4); memcpy(&caplen, h + 8, 4); memcpy(&origlen, h + 12, 4);
    if (caplen > 65536 || have - pos - 16 < caplen) die("truncated record");
    const unsigned char *d = h + 16;
    pos += 16 + caplen;
    frame++;
    /* Ethernet, IPv4 without options, ESP */
    if (caplen < 14 + 20 + 8 + 8 + 16 + 2 || caplen != origlen || d[12] != 8 || d[13] != 0 || d[14] != 0x45 || d[23] != 50) die("a frame of another shape");
    unsigned iplen = (unsigned)d[16] << 8 | d[17];
    if (14 + iplen != caplen) die("IP length does not match the frame");
    const unsigned char *esp = d + 34;
    if (be32(esp) != spi) die("another SPI");
    uint32_t seq = be32(esp + 4);
    if (seq <= top) die("a sequence number out of order");
    top = seq;
    unsigned ctlen = caplen - 34 - 8 - 8 - 16;
    /* the EPB: header, Ethernet header, plaintext, comment */
    unsigned char *o = out_room(&cap, 28 + caplen + 4 + 4 + sizeof comment_head + sizeof comment_tail + 24 + 8);
    unsigned char *data = o + 28;
    memcpy(data, d, 14);
    memcpy(nonce + 4, esp + 8, 8);
    int n1, n2;
    if (!EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) || !EVP_DecryptUpdate(ctx, NULL, &n1, esp, 8) ||
        !EVP_DecryptUpdate(ctx, data + 14, &n1, esp + 16, (int)ctlen) ||
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(esp + 16 + ctlen)) ||
        EVP_DecryptFinal_ex(ctx, data + 14 + n1, &n2) <= 0) die("an ICV that does not verify");
    unsigned pad = data[14 + ctlen - 2], nh = data[14 + ctlen - 1];
    if (pad + 2 > ctlen || nh != 4) die("a trailer of another shape");
    for (unsigned i = 0; i < pad; i++) if (data[14 + ctlen - 2 - pad + i] != i + 1) die("bad padding");
    unsigned inner = ctlen - 2 - pad;
    const unsigned char *ip2 = data + 14;
    if (inner < 20 || ip2[0] != 0x45 || ((unsigned)ip2[2] << 8 | ip2[3]) != inner) die("an inner datagram of another shape");
    unsigned len = 14 + inner, padded = (len + 3) & ~3u;
    memset(data + len, 0, padded - len);
    /* the comment option */
    unsigned char *opt = data + padded;
    char *c = (char *)opt + 4;
    memcpy(c, comment_head, sizeof comment_head - 1); c += sizeof comment_head - 1;
    memcpy(c, comment_tail, tail_len); c += tail_len;
    c = udec(c, seq);
    memcpy(c, " replay=ok", 10); c += 10;
    unsigned clen = (unsigned)(c - (char *)opt - 4), cpad = (clen + 3) & ~3u;
    memset(c, 0, cpad - clen + 4); /* padding and opt_endofopt */
    opt[0] = 1; opt[1] = 0; opt[2] = (unsigned char)clen; opt[3] = (unsigned char)(clen >> 8);
    unsigned total = 28 + padded + 4 + cpad + 4 + 4;
    uint64_t ts = (uint64_t)sec * 1000000 + usec;
    le32(o, 6); le32(o + 4, total); le32(o + 8, 0); le32(o + 12, (uint32_t)(ts >> 32)); le32(o + 16, (uint32_t)ts);
    le32(o + 20, len); le32(o + 24, len);
    le32(o + total - 4, total);
    cap.at += total;
    /* the OOB line */
    char *l = (char *)out_room(&oob, 9 + 20 + 7 + 30 + sizeof line_mid + 20 + sizeof line_end), *l0 = l;
    memcpy(l, "{\"frame\":", 9); l += 9;
    l = udec(l, frame);
    if ((int64_t)sec != date_sec) {
      time_t tt = (time_t)sec;
      struct tm tm;
      gmtime_r(&tt, &tm);
      strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S.", &tm);
      date_sec = sec;
    }
    memcpy(l, ",\"ts\":\"", 7); l += 7;
    memcpy(l, date, 20); l += 20;
    uint32_t ns = usec * 1000;
    for (int i = 8; i >= 0; i--) { l[i] = (char)('0' + ns % 10); ns /= 10; }
    l += 9;
    *l++ = 'Z';
    memcpy(l, line_mid, mid_len); l += mid_len;
    l = udec(l, seq);
    memcpy(l, line_end, sizeof line_end - 1); l += sizeof line_end - 1;
    oob.at += (size_t)(l - l0);
  }
  out_close(&cap);
  out_close(&oob);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("%llu frames %.3f s user %.3f sys %.3f rss %ld KB\n", (unsigned long long)frame, now() - t0,
         ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss);
  return 0;
}
