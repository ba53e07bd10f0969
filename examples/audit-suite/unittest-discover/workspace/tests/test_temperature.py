import unittest

from temperature import c_to_f, f_to_c


class TestTemperature(unittest.TestCase):
    def test_c_to_f(self):
        self.assertEqual(c_to_f(100), 212)
        self.assertEqual(c_to_f(0), 32)

    def test_f_to_c(self):
        self.assertEqual(f_to_c(212), 100)
