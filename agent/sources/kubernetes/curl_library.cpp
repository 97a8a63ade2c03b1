#include "sources/kubernetes/curl_library.h"

#include <dlfcn.h>

#include <string>

namespace nodemesh::kube {
namespace {

constexpr const char* kSoname = "libcurl.so.4";  // the ABI curl/curl.h describes since 2006

template <typename Fn>
bool resolve(void* handle, const char* name, Fn& fn, std::string& missing) {
  fn = reinterpret_cast<Fn>(::dlsym(handle, name));
  if (fn == nullptr) missing += missing.empty() ? name : std::string(", ") + name;
  return fn != nullptr;
}

Result<const CurlLibrary*> open() {
  void* handle = ::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return Error{std::string("loading ") + kSoname + " for the Kubernetes API client: " +
                 (why != nullptr ? why : "unknown loader error") +
                 "; install libcurl (Debian: apt install libcurl4)"};
  }
  static CurlLibrary lib;
  CURLcode (*globalInit)(long) = nullptr;
  std::string missing;
  resolve(handle, "curl_global_init", globalInit, missing);
  resolve(handle, "curl_easy_init", lib.easyInit, missing);
  resolve(handle, "curl_easy_cleanup", lib.easyCleanup, missing);
  resolve(handle, "curl_easy_setopt", lib.easySetopt, missing);
  resolve(handle, "curl_easy_getinfo", lib.easyGetinfo, missing);
  resolve(handle, "curl_easy_perform", lib.easyPerform, missing);
  resolve(handle, "curl_easy_strerror", lib.easyStrerror, missing);
  resolve(handle, "curl_slist_append", lib.slistAppend, missing);
  resolve(handle, "curl_slist_free_all", lib.slistFreeAll, missing);
  if (!missing.empty())
    return Error{std::string(kSoname) + " lacks " + missing + "; is it libcurl 7.x/8.x?"};
  if (CURLcode rc = globalInit(CURL_GLOBAL_DEFAULT); rc != CURLE_OK)
    return Error{std::string("curl_global_init failed: ") + lib.easyStrerror(rc)};
  return &lib;
}

}  // namespace

const Result<const CurlLibrary*>& curlLibrary() {
  static const Result<const CurlLibrary*> library = open();  // C++11 magic statics: once, thread-safe
  return library;
}

}  // namespace nodemesh::kube
