{
  "targets": [
    {
      "target_name": "cairn_commp",
      "sources": ["commp.c"],
      "cflags": ["-O3", "-std=c11", "-Wall"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
