// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "internal.h"

_public_ unsigned int damon_version(void)
{
	return DAMON_VERSION_NUMBER;
}

_public_ const char *damon_version_string(void)
{
	return DAMON_VERSION_STRING;
}
