# Install layout and Debian package (CPack) for nodemesh. Included from the
# top-level CMakeLists.txt after the targets; nodemesh-agent (sbin) and
# meshctl (bin) install themselves in agent/ and cli/.
#
#   cmake --install build [--prefix DIR]     # default prefix /usr/local
#   cmake --preset release -DCMAKE_INSTALL_PREFIX=/usr && cpack --config build/CPackConfig.cmake
include(GNUInstallDirs)

set(NM_DEPLOY_DIR ${CMAKE_CURRENT_LIST_DIR}/../deploy)

# The unit names the agent by absolute path: bake in the configured prefix so
# /usr/local installs run /usr/local/sbin/nodemesh-agent and the package
# (prefix /usr) runs /usr/sbin/nodemesh-agent.
file(READ ${NM_DEPLOY_DIR}/systemd/nodemesh-agent.service NM_UNIT_TEXT)
string(REPLACE "/usr/sbin/nodemesh-agent" "${CMAKE_INSTALL_FULL_SBINDIR}/nodemesh-agent" NM_UNIT_TEXT "${NM_UNIT_TEXT}")
string(REPLACE "file:/usr/share/doc/nodemesh/" "file:${CMAKE_INSTALL_FULL_DOCDIR}/" NM_UNIT_TEXT "${NM_UNIT_TEXT}")
file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/deploy/nodemesh-agent.service CONTENT "${NM_UNIT_TEXT}" @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${NM_DEPLOY_DIR}/systemd/nodemesh-agent.service)

# systemd looks in <prefix>/lib/systemd/system for /usr and /usr/local alike
# (not in lib64 or a multiarch libdir, hence no CMAKE_INSTALL_LIBDIR).
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/deploy/nodemesh-agent.service DESTINATION lib/systemd/system)

# Examples, not live config: /etc/nodemesh/node.yaml is the operator's file,
# so a package never overwrites it (docs/OPERATIONS.md says how to copy one).
install(FILES ${NM_DEPLOY_DIR}/systemd/node.yaml.example
              ${NM_DEPLOY_DIR}/vagrant/node-a.yaml ${NM_DEPLOY_DIR}/vagrant/node-b.yaml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/nodemesh/examples)
file(GLOB NM_K8S_MANIFESTS CONFIGURE_DEPENDS ${NM_DEPLOY_DIR}/kubernetes/*.yaml)
install(FILES ${NM_K8S_MANIFESTS} DESTINATION ${CMAKE_INSTALL_DATADIR}/nodemesh/kubernetes)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/../docs/OPERATIONS.md ${CMAKE_CURRENT_LIST_DIR}/../docs/CONFIG.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Debian package. Runtime libraries are the Debian 12 sonames of what the
# agent links (libbpf, liburing, yaml-cpp, spdlog, fmt; libssl for the proxy).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME nodemesh)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "nodemesh maintainers <maintainers@example.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "per-node service-mesh dataplane (eBPF socket load balancing)")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libbpf1, liburing2, libyaml-cpp0.7, libspdlog1.10, libfmt9, libssl3")
# The unit has the configured prefix baked in: package what was configured.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
include(CPack)
