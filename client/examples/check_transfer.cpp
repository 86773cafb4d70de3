// A service asking flowgated before it sends check-up results to a contractor, as the
// README shows it: connect, check, act on the decision and its obligations.
// Usage: flowgate_client_example [SOCKET]   (default: FLOWGATE_SOCKET)
#include "client/client.hpp"

#include <iostream>

int main(int argc, char** argv) {
    using namespace flowgate::client;
    auto client = Client::connect(argc > 1 ? argv[1] : default_socket_path());
    if (!client) { // not_running, io
        std::cerr << client.error.message << "\n";
        return 2;
    }
    CheckRequest question;
    question.purpose = "health_services"; // or the table's label: "保健事業に必要な利用目的"
    question.activity = "lifestyle_programme";
    question.recipient = "prevent"; // (株)PREVENT
    question.data = {"checkup_result"};
    question.subject = "p-000123"; // a pseudonymous reference, never a name
    auto decision = client.value->check(question);
    if (!decision) { // timeout, disconnected, or daemon_error with error.code
        std::cerr << decision.error.message << "\n";
        return 2;
    }
    if (!decision.value->allowed) {
        std::cout << "deny: " << decision.value->reason << "\n";
        return 1;
    }
    std::cout << "allow by " << decision.value->rule << " (audit seq " << decision.value->audit_seq
              << ")\n";
    for (const std::string& obligation : decision.value->obligations) {
        std::cout << "  obligation: " << obligation << "\n";
    }
    return 0;
}
