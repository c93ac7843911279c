/* SPDX-License-Identifier: MIT */
/*
 * Every service this build has, one line each, in id order. This list is
 * the only place a new service is named outside its own folder
 * (src/services/NAME/): the protocol's table (src/proto/services.c), the
 * agent's (src/guest/services.c), the daemon's (src/host/host-services.c)
 * and the build (src/services/meson.build) are all made from it.
 *
 * Include it with VMIC_SERVICE(name) defined; each line expands to
 * whatever the includer needs, for example `&name##_host,`.
 */
VMIC_SERVICE(heartbeat)
VMIC_SERVICE(shutdown)
VMIC_SERVICE(timesync)
VMIC_SERVICE(kvp)
VMIC_SERVICE(backup)
VMIC_SERVICE(filecopy)
VMIC_SERVICE(session)
