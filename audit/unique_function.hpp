// A move-only callable, so that Asio completion handlers (which own sockets and
// buffers and cannot be copied) can be handed to the audit writer as they are.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace flowgate::audit {

template <class Signature> class UniqueFunction;

template <class R, class... Args> class UniqueFunction<R(Args...)> {
public:
    UniqueFunction() = default;
    template <class F>
    requires(!std::is_same_v<std::decay_t<F>, UniqueFunction> &&
             std::is_invocable_r_v<R, std::decay_t<F>&, Args...>)
        UniqueFunction(F&& function) // NOLINT(google-explicit-constructor): a callable is one
        : m_impl(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(function))) {}

    R operator()(Args... args) { return m_impl->call(std::forward<Args>(args)...); }
    explicit operator bool() const noexcept { return m_impl != nullptr; }

private:
    struct Base {
        virtual ~Base() = default;
        virtual R call(Args... args) = 0;
    };
    template <class F> struct Impl final : Base {
        explicit Impl(F&& function) : m_function(std::move(function)) {}
        explicit Impl(const F& function) : m_function(function) {}
        R call(Args... args) override { return m_function(std::forward<Args>(args)...); }
        F m_function;
    };
    std::unique_ptr<Base> m_impl;
};

} // namespace flowgate::audit
