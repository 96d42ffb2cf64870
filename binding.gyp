{
  # Native crypto addon for ipsecov2 (see native/ipsecov2_native.c). Built by
  # scripts/build-native.mjs at install; the tool falls back to node:crypto without it.
  # It links against nothing: the OpenSSL symbols come from the node binary itself.
  "targets": [
    {
      "target_name": "ipsecov2_native",
      "sources": ["native/ipsecov2_native.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "cflags!": ["-O3"],
      "conditions": [
        ["OS=='linux'", {
          # Resolve every symbol at load time, so a node without one of them makes require()
          # throw (and the loader fall back) instead of aborting later at the first call.
          "ldflags": ["-Wl,-z,now"]
        }],
        ["OS=='mac'", {
          "xcode_settings": {
            "OTHER_CFLAGS": ["-O2"],
            "OTHER_LDFLAGS": ["-undefined", "dynamic_lookup"]
          }
        }]
      ]
    }
  ]
}
