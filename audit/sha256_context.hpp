// One reusable SHA-256 digest context, for the hashers that hash a row (or a tree node)
// at a time by the million: the context is made once and SHA-256's implementation is
// fetched once, where EVP_sha256() would look it up on every init. Internal to audit/:
// the chain's ChainHasher and the tree's TreeHasher hold one each.
#pragma once

#include <openssl/evp.h>

namespace flowgate::audit {

struct Sha256Context {
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    Sha256Context() = default;
    ~Sha256Context() {
        EVP_MD_free(sha256);
        EVP_MD_CTX_free(context);
    }
    Sha256Context(const Sha256Context&) = delete;
    Sha256Context& operator=(const Sha256Context&) = delete;
};

} // namespace flowgate::audit
