/* Links the installed library, checks the ABI and that a failure is reported, not fatal. */
#include <stdio.h>
#include <string.h>

#include "talkinghead.h"

int main(void) {
    th_model *model = NULL;
    th_status s;
    if (th_abi_version() != TH_ABI_VERSION) return 1;
    s = th_model_load("/nonexistent/package", NULL, &model);
    printf("talkinghead %s: %s: %s\n", th_version(), th_status_string(s), th_last_error());
    return (s == TH_ERROR_NOT_FOUND && model == NULL && strstr(th_last_error(), "not found")) ? 0 : 1;
}
