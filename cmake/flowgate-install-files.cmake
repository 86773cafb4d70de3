# Run by `cmake --install` (see FlowgateInstall.cmake) with the prefix being installed
# to: makes the units, the sysusers.d and tmpfiles.d entries and the default
# configuration from their templates in systemd/, and installs them. A configuration
# or policy already in place is kept: once installed, those are the admin's files.

# PREFIX/DIR, with GNUInstallDirs' rules for /etc under the prefixes / and /usr (and
# /etc/opt/... under /opt/...).
function(flowgate_sysconf_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  elseif(CMAKE_INSTALL_PREFIX MATCHES "^/(usr/?)?$")
    set(${out} "/${dir}" PARENT_SCOPE)
  elseif(CMAKE_INSTALL_PREFIX MATCHES "^/opt/" AND NOT CMAKE_INSTALL_PREFIX MATCHES "^/opt/homebrew")
    set(${out} "/${dir}${CMAKE_INSTALL_PREFIX}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

function(flowgate_prefix_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    string(REGEX REPLACE "/$" "" prefix "${CMAKE_INSTALL_PREFIX}")
    set(${out} "${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

flowgate_prefix_dir(FLOWGATE_FULL_BINDIR "${FLOWGATE_BINDIR}")
flowgate_prefix_dir(FLOWGATE_FULL_SBINDIR "${FLOWGATE_SBINDIR}")
flowgate_prefix_dir(FLOWGATE_FULL_DOCDIR "${FLOWGATE_DOCDIR}")
flowgate_prefix_dir(FLOWGATE_FULL_DATADIR "${FLOWGATE_DATADIR}")
flowgate_prefix_dir(FLOWGATE_FULL_UNIT_DIR "${FLOWGATE_SYSTEMD_UNIT_DIR}")
flowgate_prefix_dir(FLOWGATE_FULL_SYSUSERS_DIR "${FLOWGATE_SYSUSERS_DIR}")
flowgate_prefix_dir(FLOWGATE_FULL_TMPFILES_DIR "${FLOWGATE_TMPFILES_DIR}")
flowgate_sysconf_dir(FLOWGATE_FULL_SYSCONFDIR "${FLOWGATE_SYSCONFDIR}")

# The unit's StateDirectory= and RuntimeDirectory= are always /var/lib and /run, so a
# system prefix uses those. Any other prefix is a private tree (a staging or test
# install): its state and socket stay inside it, where the daemon can run unprivileged.
if(CMAKE_INSTALL_PREFIX MATCHES "^/(usr/?|usr/local/?|opt/.*)?$")
  set(FLOWGATE_SYSTEM_PREFIX TRUE)
  set(FLOWGATE_LOCALSTATE "/var")
  set(FLOWGATE_RUN_DIR "/run/flowgate")
else()
  set(FLOWGATE_SYSTEM_PREFIX FALSE)
  flowgate_prefix_dir(FLOWGATE_LOCALSTATE "${FLOWGATE_LOCALSTATEDIR}")
  flowgate_prefix_dir(FLOWGATE_RUN_DIR "run/flowgate")
endif()

set(FLOWGATE_CONFIG_DIR "${FLOWGATE_FULL_SYSCONFDIR}/flowgate")
set(FLOWGATE_CONFIG "${FLOWGATE_CONFIG_DIR}/flowgated.toml")
set(FLOWGATE_POLICY_DIR "${FLOWGATE_CONFIG_DIR}/policy")
set(FLOWGATE_STATE_DIR "${FLOWGATE_LOCALSTATE}/lib/flowgate")
set(FLOWGATE_BACKUP_DIR "${FLOWGATE_LOCALSTATE}/backups/flowgate")
set(FLOWGATE_AUDIT_DB "${FLOWGATE_STATE_DIR}/audit.db")
set(FLOWGATE_SOCKET "${FLOWGATE_RUN_DIR}/flowgate.sock")

set(generated "${FLOWGATE_GENERATED_DIR}")
set(templates "${FLOWGATE_SOURCE_DIR}/systemd")
file(REMOVE_RECURSE "${generated}")
configure_file("${templates}/flowgated.service.in" "${generated}/units/flowgated.service" @ONLY)
configure_file("${templates}/flowgated.socket.in" "${generated}/units/flowgated.socket" @ONLY)
configure_file("${templates}/flowgate-ship.service.in" "${generated}/units/flowgate-ship.service"
               @ONLY)
configure_file("${templates}/sysusers.conf.in" "${generated}/sysusers/flowgate.conf" @ONLY)
configure_file("${templates}/tmpfiles.conf.in" "${generated}/tmpfiles/flowgate.conf" @ONLY)
configure_file("${templates}/flowgated.toml.in" "${generated}/config/flowgated.toml" @ONLY)

file(INSTALL "${generated}/units/flowgated.service" "${generated}/units/flowgated.socket"
     "${generated}/units/flowgate-ship.service" DESTINATION "${FLOWGATE_FULL_UNIT_DIR}")
file(INSTALL "${generated}/sysusers/flowgate.conf" DESTINATION "${FLOWGATE_FULL_SYSUSERS_DIR}")
file(INSTALL "${generated}/tmpfiles/flowgate.conf" DESTINATION "${FLOWGATE_FULL_TMPFILES_DIR}")
# The default configuration as shipped, next to the bundled policy.
file(INSTALL "${generated}/config/flowgated.toml" DESTINATION "${FLOWGATE_FULL_DATADIR}/flowgate")

if(EXISTS "$ENV{DESTDIR}${FLOWGATE_CONFIG}")
  message(STATUS "Kept: $ENV{DESTDIR}${FLOWGATE_CONFIG} (the shipped one is in "
                 "${FLOWGATE_FULL_DATADIR}/flowgate)")
else()
  file(INSTALL "${generated}/config/flowgated.toml" DESTINATION "${FLOWGATE_CONFIG_DIR}")
endif()

# The live policy is one unit: an edited table with a newer release's extra file could
# check differently from either, so an existing policy directory is kept whole.
file(GLOB existing_policy "$ENV{DESTDIR}${FLOWGATE_POLICY_DIR}/*.policy")
if(existing_policy)
  message(STATUS "Kept: $ENV{DESTDIR}${FLOWGATE_POLICY_DIR} (the bundled one is in "
                 "${FLOWGATE_FULL_DATADIR}/flowgate/policy)")
else()
  file(INSTALL "${FLOWGATE_SOURCE_DIR}/policies/" DESTINATION "${FLOWGATE_POLICY_DIR}")
endif()

if(NOT FLOWGATE_SYSTEM_PREFIX)
  # systemd-tmpfiles makes these on a real system.
  file(MAKE_DIRECTORY "$ENV{DESTDIR}${FLOWGATE_STATE_DIR}" "$ENV{DESTDIR}${FLOWGATE_RUN_DIR}"
       "$ENV{DESTDIR}${FLOWGATE_BACKUP_DIR}")
endif()
