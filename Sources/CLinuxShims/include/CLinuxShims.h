// SPDX-License-Identifier: MIT
// Only what Swift cannot call directly: variadic ioctls, CMSG macros, mmsg helpers.
#ifndef VPND_CLINUXSHIMS_H
#define VPND_CLINUXSHIMS_H
#include <stdint.h>
#include <stddef.h>

#endif
