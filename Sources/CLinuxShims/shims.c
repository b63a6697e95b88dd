// SPDX-License-Identifier: MIT
#include "CLinuxShims.h"
