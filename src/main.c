#include <stdio.h>
int main(void)
{
        puts("lbproxy: not yet");
        return 0;
}
