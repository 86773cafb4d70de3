# Where `cmake --install` puts flowgate, the way a Debian admin expects it: the
# binaries under the prefix, the units, sysusers.d and tmpfiles.d entries under
# PREFIX/lib, the configuration and the live policy in /etc/flowgate, the audit store in
# /var/lib/flowgate. The units and the configuration name absolute paths, and
# `cmake --install --prefix P` chooses the prefix after configuring, so they are
# generated at install time by flowgate-install-files.cmake.

set(FLOWGATE_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
  "Where the systemd units are installed (a relative path is under the prefix)")
set(FLOWGATE_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING
  "Where the sysusers.d entry is installed (a relative path is under the prefix)")
set(FLOWGATE_TMPFILES_DIR "lib/tmpfiles.d" CACHE STRING
  "Where the tmpfiles.d entry is installed (a relative path is under the prefix)")

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
  FILES_MATCHING PATTERN "*.md")
# The bundled policy as shipped, to compare the live copy in /etc/flowgate against.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/policies/ DESTINATION ${CMAKE_INSTALL_DATADIR}/flowgate/policy)

install(CODE "
set(FLOWGATE_SOURCE_DIR [[${PROJECT_SOURCE_DIR}]])
set(FLOWGATE_GENERATED_DIR [[${PROJECT_BINARY_DIR}/installed-files]])
set(FLOWGATE_BINDIR [[${CMAKE_INSTALL_BINDIR}]])
set(FLOWGATE_SBINDIR [[${CMAKE_INSTALL_SBINDIR}]])
set(FLOWGATE_SYSCONFDIR [[${CMAKE_INSTALL_SYSCONFDIR}]])
set(FLOWGATE_LOCALSTATEDIR [[${CMAKE_INSTALL_LOCALSTATEDIR}]])
set(FLOWGATE_DATADIR [[${CMAKE_INSTALL_DATADIR}]])
set(FLOWGATE_DOCDIR [[${CMAKE_INSTALL_DOCDIR}]])
set(FLOWGATE_SYSTEMD_UNIT_DIR [[${FLOWGATE_SYSTEMD_UNIT_DIR}]])
set(FLOWGATE_SYSUSERS_DIR [[${FLOWGATE_SYSUSERS_DIR}]])
set(FLOWGATE_TMPFILES_DIR [[${FLOWGATE_TMPFILES_DIR}]])
include([[${CMAKE_CURRENT_LIST_DIR}/flowgate-install-files.cmake]])
")
