/* A stock C program, nothing webkvm about it: glibc, static, rv64gc. */
#include <stdio.h>

int main(void)
{
	double x = 1.0 / 3.0;
	printf("Hello, world! 1/3 = %.17g, sqrt-ish = %f\n", x, x * x * 9.0 + 0.5);
	return 0;
}
