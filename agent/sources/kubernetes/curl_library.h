// libcurl, opened with dlopen on first use instead of linked. Only the
// Kubernetes source talks HTTP through it, and a linked libcurl makes every
// agent map about 25 more libraries at start (GnuTLS, Kerberos, LDAP, SSH,
// RTMP, ... - Debian's libcurl4 links them all), about 3.5 MB of resident
// memory on each node whether it reads the Kubernetes API or a file.
#pragma once

#include <curl/curl.h>

#include "common/result.h"

namespace nodemesh::kube {

// The entry points the API client uses, resolved from libcurl.so.4.
struct CurlLibrary {
  CURL* (*easyInit)() = nullptr;
  void (*easyCleanup)(CURL*) = nullptr;
  CURLcode (*easySetopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easyGetinfo)(CURL*, CURLINFO, ...) = nullptr;
  CURLcode (*easyPerform)(CURL*) = nullptr;
  const char* (*easyStrerror)(CURLcode) = nullptr;
  curl_slist* (*slistAppend)(curl_slist*, const char*) = nullptr;
  void (*slistFreeAll)(curl_slist*) = nullptr;
};

// The process-wide library: opened and curl_global_init()ed once, on the
// first call (thread-safe); never closed. The error names the file, what the
// loader said and the package to install.
const Result<const CurlLibrary*>& curlLibrary();

}  // namespace nodemesh::kube
